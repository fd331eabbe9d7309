/** D-Bus marshalling: values to wire bytes (signature.ts says how each type is laid out). */
import {
  ALIGN,
  alignOf,
  DBusWireError,
  isObjectPath,
  MAX_MESSAGE_BYTES,
  parseSignature,
  type TypeNode,
  Variant,
} from './signature.js';

/** The fixed-size numbers: their size, and how to write one (little-endian). */
const NUMBERS: Record<string, { size: number; write(b: Buffer, v: number, at: number): void }> = {
  y: { size: 1, write: (b, v, at) => b.writeUInt8(v, at) },
  n: { size: 2, write: (b, v, at) => b.writeInt16LE(v, at) },
  q: { size: 2, write: (b, v, at) => b.writeUInt16LE(v, at) },
  i: { size: 4, write: (b, v, at) => b.writeInt32LE(v, at) },
  u: { size: 4, write: (b, v, at) => b.writeUInt32LE(v, at) },
  d: { size: 8, write: (b, v, at) => b.writeDoubleLE(v, at) },
};
/** The 64-bit integers, written from a bigint (or a number). */
const BIGINTS: Record<string, (b: Buffer, v: bigint, at: number) => void> = {
  x: (b, v, at) => b.writeBigInt64LE(v, at),
  t: (b, v, at) => b.writeBigUInt64LE(v, at),
};

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
    const number = NUMBERS[code];
    if (number) {
      number.write(b, num(), at);
      this.#len += number.size;
      return;
    }
    const big = BIGINTS[code];
    if (big) {
      big(b, BigInt(v as bigint | number), at);
      this.#len += 8;
      return;
    }
    switch (code) {
      case 'b':
        if (typeof v !== 'boolean') throw new DBusWireError('type b needs a boolean');
        b.writeUInt32LE(v ? 1 : 0, at);
        this.#len += 4;
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
