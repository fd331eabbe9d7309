/**
 * D-Bus wire marshalling (https://dbus.freedesktop.org/doc/dbus-specification.html#message-protocol),
 * the subset a tray icon needs: every basic type except unix fds, arrays, structs, dict entries and
 * variants. Values map to JS as:
 *   y n q i u d -> number, x t -> bigint, b -> boolean, s o g -> string, ay -> Buffer,
 *   a{..} -> Map, other arrays -> Array, (..) -> Array, v -> Variant.
 * Writers also accept a plain object for a{s..} and any array of numbers for ay.
 */

/** A value with its own signature: D-Bus's `v`. */
export class Variant<T = unknown> {
  constructor(
    readonly signature: string,
    readonly value: T,
  ) {}
}

/** A message or signature that breaks the wire rules. */
export class DBusWireError extends Error {
  readonly code = 'DBUS_WIRE';
}

/** Largest message we write or accept; the spec allows 128 MiB, a tray needs a few KiB. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Deepest nesting of containers we accept (the spec's limit is 64 in total). */
const MAX_DEPTH = 32;

/** One complete type from a signature. */
export type TypeNode =
  | { kind: 'basic'; code: string }
  | { kind: 'array'; elem: TypeNode }
  | { kind: 'dict'; key: TypeNode; value: TypeNode }
  | { kind: 'struct'; fields: TypeNode[] }
  | { kind: 'variant' };

const BASIC = 'ybnqiuxtdsog';
const ALIGN: Record<string, number> = {
  y: 1,
  b: 4,
  n: 2,
  q: 2,
  i: 4,
  u: 4,
  x: 8,
  t: 8,
  d: 8,
  s: 4,
  o: 4,
  g: 1,
  v: 1,
};

/** Splits a signature into its complete types. */
export function parseSignature(sig: string): TypeNode[] {
  if (sig.length > 255) throw new DBusWireError('signature longer than 255 bytes');
  const out: TypeNode[] = [];
  let pos = 0;
  const one = (depth: number): TypeNode => {
    if (depth > MAX_DEPTH) throw new DBusWireError('signature nests too deeply');
    const c = sig[pos++];
    if (c === undefined) throw new DBusWireError(`incomplete signature "${sig}"`);
    if (BASIC.includes(c)) return { kind: 'basic', code: c };
    if (c === 'v') return { kind: 'variant' };
    if (c === 'a') {
      if (sig[pos] === '{') {
        pos++;
        const key = one(depth + 1);
        if (key.kind !== 'basic') throw new DBusWireError('dict key must be a basic type');
        const value = one(depth + 1);
        if (sig[pos++] !== '}') throw new DBusWireError(`bad dict entry in "${sig}"`);
        return { kind: 'dict', key, value };
      }
      return { kind: 'array', elem: one(depth + 1) };
    }
    if (c === '(') {
      const fields: TypeNode[] = [];
      while (sig[pos] !== ')') {
        if (pos >= sig.length) throw new DBusWireError(`unclosed struct in "${sig}"`);
        fields.push(one(depth + 1));
      }
      pos++;
      if (fields.length === 0) throw new DBusWireError('empty struct');
      return { kind: 'struct', fields };
    }
    throw new DBusWireError(`unsupported type code "${c}" in "${sig}"`);
  };
  while (pos < sig.length) out.push(one(0));
  return out;
}

function alignOf(t: TypeNode): number {
  switch (t.kind) {
    case 'basic':
      return ALIGN[t.code]!;
    case 'array':
    case 'dict':
      return 4;
    case 'struct':
      return 8;
    case 'variant':
      return 1;
  }
}

/** Serialises values into a growing little-endian buffer. Offsets count from the message start. */
export class WireWriter {
  #buf = Buffer.alloc(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  result(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }

  #reserve(n: number): void {
    if (this.#len + n > MAX_MESSAGE_BYTES) throw new DBusWireError('message too large');
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  align(n: number): void {
    const pad = (n - (this.#len % n)) % n;
    this.#reserve(pad);
    this.#buf.fill(0, this.#len, this.#len + pad);
    this.#len += pad;
  }

  byte(v: number): void {
    this.#reserve(1);
    this.#buf.writeUInt8(v, this.#len);
    this.#len += 1;
  }

  uint32(v: number): void {
    this.align(4);
    this.#reserve(4);
    this.#buf.writeUInt32LE(v, this.#len);
    this.#len += 4;
  }

  /** Overwrites a uint32 written earlier (array lengths are known only afterwards). */
  patchUint32(at: number, v: number): void {
    this.#buf.writeUInt32LE(v, at);
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** Writes values of the given signature. */
  write(sig: string, values: readonly unknown[]): void {
    const types = parseSignature(sig);
    if (types.length !== values.length) {
      throw new DBusWireError(`signature "${sig}" needs ${types.length} values, got ${values.length}`);
    }
    types.forEach((t, i) => {
      this.value(t, values[i]);
    });
  }

  value(t: TypeNode, v: unknown): void {
    switch (t.kind) {
      case 'basic':
        this.#basic(t.code, v);
        return;
      case 'variant': {
        if (!(v instanceof Variant)) throw new DBusWireError('a variant needs a Variant value');
        const inner = parseSignature(v.signature);
        if (inner.length !== 1) throw new DBusWireError(`variant signature "${v.signature}" is not one type`);
        this.#basic('g', v.signature);
        this.value(inner[0]!, v.value);
        return;
      }
      case 'struct': {
        if (!Array.isArray(v) || v.length !== t.fields.length) {
          throw new DBusWireError(`a struct needs an array of ${t.fields.length} values`);
        }
        this.align(8);
        t.fields.forEach((f, i) => {
          this.value(f, v[i]);
        });
        return;
      }
      case 'array': {
        if (t.elem.kind === 'basic' && t.elem.code === 'y' && (v instanceof Uint8Array || Array.isArray(v))) {
          const b = v instanceof Uint8Array ? v : Uint8Array.from(v as number[]);
          this.uint32(b.length);
          this.bytes(b);
          return;
        }
        if (!Array.isArray(v)) throw new DBusWireError('an array needs an Array value');
        const lenAt = this.#lengthSlot();
        this.align(alignOf(t.elem));
        const start = this.#len;
        for (const item of v) this.value(t.elem, item);
        this.patchUint32(lenAt, this.#len - start);
        return;
      }
      case 'dict': {
        const entries: [unknown, unknown][] =
          v instanceof Map ? [...v.entries()] : Object.entries((v ?? {}) as Record<string, unknown>);
        const lenAt = this.#lengthSlot();
        this.align(8);
        const start = this.#len;
        for (const [k, val] of entries) {
          this.align(8);
          this.value(t.key, k);
          this.value(t.value, val);
        }
        this.patchUint32(lenAt, this.#len - start);
        return;
      }
    }
  }

  #lengthSlot(): number {
    this.uint32(0);
    return this.#len - 4;
  }

  #basic(code: string, v: unknown): void {
    const num = (): number => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new DBusWireError(`type ${code} needs a number`);
      return v;
    };
    const a = ALIGN[code]!;
    this.align(a);
    this.#reserve(8);
    const b = this.#buf;
    const at = this.#len;
    switch (code) {
      case 'y':
        b.writeUInt8(num(), at);
        this.#len += 1;
        return;
      case 'b':
        if (typeof v !== 'boolean') throw new DBusWireError('type b needs a boolean');
        b.writeUInt32LE(v ? 1 : 0, at);
        this.#len += 4;
        return;
      case 'n':
        b.writeInt16LE(num(), at);
        this.#len += 2;
        return;
      case 'q':
        b.writeUInt16LE(num(), at);
        this.#len += 2;
        return;
      case 'i':
        b.writeInt32LE(num(), at);
        this.#len += 4;
        return;
      case 'u':
        b.writeUInt32LE(num(), at);
        this.#len += 4;
        return;
      case 'x':
        b.writeBigInt64LE(BigInt(v as bigint | number), at);
        this.#len += 8;
        return;
      case 't':
        b.writeBigUInt64LE(BigInt(v as bigint | number), at);
        this.#len += 8;
        return;
      case 'd':
        b.writeDoubleLE(num(), at);
        this.#len += 8;
        return;
      case 's':
      case 'o':
      case 'g': {
        if (typeof v !== 'string') throw new DBusWireError(`type ${code} needs a string`);
        const s = Buffer.from(v, 'utf8');
        if (s.includes(0)) throw new DBusWireError('strings may not contain NUL');
        if (code === 'o' && !isObjectPath(v)) throw new DBusWireError(`"${v}" is not an object path`);
        if (code === 'g') {
          if (s.length > 255) throw new DBusWireError('signature too long');
          this.byte(s.length);
        } else {
          this.uint32(s.length);
        }
        this.bytes(s);
        this.byte(0);
        return;
      }
    }
    throw new DBusWireError(`unsupported type ${code}`);
  }
}

/** Reads values back; every length is checked against the bytes that are there. */
export class WireReader {
  #buf: Buffer;
  #pos: number;
  #le: boolean;
  #end: number;

  constructor(buf: Buffer, opts: { offset?: number; littleEndian?: boolean; end?: number } = {}) {
    this.#buf = buf;
    this.#pos = opts.offset ?? 0;
    this.#le = opts.littleEndian ?? true;
    this.#end = opts.end ?? buf.length;
  }

  get offset(): number {
    return this.#pos;
  }

  align(n: number): void {
    const pad = (n - (this.#pos % n)) % n;
    this.#need(pad);
    this.#pos += pad;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#end) throw new DBusWireError('message truncated');
  }

  read(sig: string): unknown[] {
    return parseSignature(sig).map((t) => this.value(t, 0));
  }

  uint32(): number {
    this.align(4);
    this.#need(4);
    const v = this.#le ? this.#buf.readUInt32LE(this.#pos) : this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  value(t: TypeNode, depth: number): unknown {
    if (depth > MAX_DEPTH) throw new DBusWireError('value nests too deeply');
    switch (t.kind) {
      case 'basic':
        return this.#basic(t.code);
      case 'variant': {
        const sig = this.#basic('g') as string;
        const inner = parseSignature(sig);
        if (inner.length !== 1) throw new DBusWireError(`variant signature "${sig}" is not one type`);
        return new Variant(sig, this.value(inner[0]!, depth + 1));
      }
      case 'struct':
        this.align(8);
        return t.fields.map((f) => this.value(f, depth + 1));
      case 'array': {
        const len = this.uint32();
        if (len > 64 * 1024 * 1024) throw new DBusWireError('array longer than 64 MiB');
        this.align(alignOf(t.elem));
        this.#need(len);
        const end = this.#pos + len;
        if (t.elem.kind === 'basic' && t.elem.code === 'y') {
          const b = Buffer.from(this.#buf.subarray(this.#pos, end));
          this.#pos = end;
          return b;
        }
        const out: unknown[] = [];
        while (this.#pos < end) out.push(this.value(t.elem, depth + 1));
        if (this.#pos !== end) throw new DBusWireError('array contents overrun its length');
        return out;
      }
      case 'dict': {
        const len = this.uint32();
        this.align(8);
        this.#need(len);
        const end = this.#pos + len;
        const out = new Map<unknown, unknown>();
        while (this.#pos < end) {
          this.align(8);
          const k = this.value(t.key, depth + 1);
          out.set(k, this.value(t.value, depth + 1));
        }
        if (this.#pos !== end) throw new DBusWireError('dict contents overrun its length');
        return out;
      }
    }
  }

  #basic(code: string): unknown {
    this.align(ALIGN[code]!);
    const b = this.#buf;
    const at = this.#pos;
    const le = this.#le;
    const take = (n: number) => {
      this.#need(n);
      this.#pos += n;
    };
    switch (code) {
      case 'y':
        take(1);
        return b.readUInt8(at);
      case 'b': {
        take(4);
        const v = le ? b.readUInt32LE(at) : b.readUInt32BE(at);
        if (v > 1) throw new DBusWireError('boolean is neither 0 nor 1');
        return v === 1;
      }
      case 'n':
        take(2);
        return le ? b.readInt16LE(at) : b.readInt16BE(at);
      case 'q':
        take(2);
        return le ? b.readUInt16LE(at) : b.readUInt16BE(at);
      case 'i':
        take(4);
        return le ? b.readInt32LE(at) : b.readInt32BE(at);
      case 'u':
        take(4);
        return le ? b.readUInt32LE(at) : b.readUInt32BE(at);
      case 'x':
        take(8);
        return le ? b.readBigInt64LE(at) : b.readBigInt64BE(at);
      case 't':
        take(8);
        return le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
      case 'd':
        take(8);
        return le ? b.readDoubleLE(at) : b.readDoubleBE(at);
      case 's':
      case 'o':
      case 'g': {
        let len: number;
        if (code === 'g') {
          take(1);
          len = b.readUInt8(at);
        } else {
          len = this.uint32();
        }
        const start = this.#pos;
        take(len + 1);
        if (b[start + len] !== 0) throw new DBusWireError('string is not NUL-terminated');
        return b.toString('utf8', start, start + len);
      }
    }
    throw new DBusWireError(`unsupported type ${code}`);
  }
}

/** True for a valid D-Bus object path such as /org/example/Item. */
export function isObjectPath(p: string): boolean {
  return p === '/' || /^(\/[A-Za-z0-9_]+)+$/.test(p);
}
