/** D-Bus unmarshalling: wire bytes back to values, every length checked (see signature.ts). */
import {
  ALIGN,
  alignOf,
  DBusWireError,
  MAX_DEPTH,
  parseSignature,
  type TypeNode,
  Variant,
} from './signature.js';

/** The fixed-size numbers: their size, and how to read one in either byte order. */
const FIXED: Record<string, { size: number; read(b: Buffer, at: number, le: boolean): number | bigint }> = {
  y: { size: 1, read: (b, at) => b.readUInt8(at) },
  n: { size: 2, read: (b, at, le) => (le ? b.readInt16LE(at) : b.readInt16BE(at)) },
  q: { size: 2, read: (b, at, le) => (le ? b.readUInt16LE(at) : b.readUInt16BE(at)) },
  i: { size: 4, read: (b, at, le) => (le ? b.readInt32LE(at) : b.readInt32BE(at)) },
  u: { size: 4, read: (b, at, le) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at)) },
  x: { size: 8, read: (b, at, le) => (le ? b.readBigInt64LE(at) : b.readBigInt64BE(at)) },
  t: { size: 8, read: (b, at, le) => (le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) },
  d: { size: 8, read: (b, at, le) => (le ? b.readDoubleLE(at) : b.readDoubleBE(at)) },
};

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
    const fixed = FIXED[code];
    if (fixed) {
      take(fixed.size);
      return fixed.read(b, at, le);
    }
    switch (code) {
      case 'b': {
        take(4);
        const v = le ? b.readUInt32LE(at) : b.readUInt32BE(at);
        if (v > 1) throw new DBusWireError('boolean is neither 0 nor 1');
        return v === 1;
      }
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
