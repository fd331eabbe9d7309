/**
 * The SSH wire encoding (RFC 4251 section 5) used inside OpenSSH key blobs: uint32 and length-prefixed strings.
 */

/** Raised by SshReader on truncated or oversized data; callers wrap it with the file and the fix. */
export class SshWireError extends Error {}

/** Encode a list of fields as SSH wire bytes: numbers become uint32, strings and buffers become strings. */
export function encodeSshWire(fields: readonly (number | string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [];
  for (const field of fields) {
    if (typeof field === 'number') {
      const n = Buffer.alloc(4);
      n.writeUInt32BE(field);
      parts.push(n);
    } else {
      const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : Buffer.from(field);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      parts.push(len, bytes);
    }
  }
  return Buffer.concat(parts);
}

/** Sequential reader over SSH wire bytes; every read checks the remaining length first. */
export class SshReader {
  readonly #data: Buffer;
  #offset = 0;

  constructor(data: Buffer) {
    this.#data = data;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#data.length - this.#offset;
  }

  /** Read a big-endian uint32. */
  uint32(): number {
    if (this.remaining < 4) throw new SshWireError('data ends in the middle of a number');
    const value = this.#data.readUInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  /** Read a length-prefixed byte string. */
  bytes(): Buffer {
    const length = this.uint32();
    if (length > this.remaining) throw new SshWireError('a field is longer than the data');
    const value = this.#data.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  /** Read a length-prefixed string as UTF-8. */
  string(): string {
    return this.bytes().toString('utf8');
  }

  /** Read `length` raw bytes with no prefix. */
  raw(length: number): Buffer {
    if (length > this.remaining) throw new SshWireError('data is shorter than expected');
    const value = this.#data.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  /** Everything not read yet. */
  rest(): Buffer {
    return this.raw(this.remaining);
  }
}
