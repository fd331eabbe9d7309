/**
 * What a message record is (docs/PROTOCOL.md, "Messages"), and the pieces records are written with: the
 * bounds-checked payload Reader and the field writers. The records themselves live in one file per
 * message group (handshake-messages.ts, tunnel-messages.ts, channel-messages.ts); messages.ts joins
 * them into the one table and is the only file that reads or writes the plaintext header.
 *
 * plaintext = type u8 | flags u8 | stream_id u32 BE | payload
 */

import { ProtocolError } from './errors.js';

/** Flag bits (plaintext byte 1); each type defines its own, in its record's `knownFlags`. */
export const Flags = {
  /** Data: the sender will send no more bytes (TCP half-close). */
  FIN: 0x01,
  /** Heartbeat: this is the answer to a heartbeat. */
  REPLY: 0x01,
  /** OpenTunnel: neither end compresses the frames of this tunnel's connections. */
  NO_COMPRESS: 0x01,
  /** OpenTunnel: this tunnel asks for zstd (codec 2); the grant is TunnelStatus's ZSTD_GRANTED. */
  ZSTD: 0x02,
  /** TunnelStatus: the tunnel's connections may send codec 2 (zstd) both ways. */
  ZSTD_GRANTED: 0x01,
} as const;

/** The plaintext header's fields (the bytes before the payload). */
export interface PlaintextHeader {
  type: number;
  flags: number;
  streamId: number;
}

/** Who sends a message type. */
export type Sender = 'client' | 'server' | 'both';

/**
 * Everything about one message type, in one place: its code, who sends it, whether it carries a
 * stream_id, its flag bits, and how its payload is written and read. The direction sets, the
 * stream_id and flag checks and both switches are derived from these records.
 */
export interface MessageRecord<M extends { type: string } = { type: string }> {
  /** The type code (plaintext byte 0). */
  readonly code: number;
  readonly from: Sender;
  /** True when stream_id carries a value (a tunnel or connection id); otherwise it must be 0. */
  readonly usesStream: boolean;
  /** The flag bits this type defines; any other set bit is ERR_MALFORMED. */
  readonly knownFlags: number;
  /** The header's flags and stream_id for a message (both 0 when absent). */
  header(msg: M): { flags?: number; streamId?: number };
  /** The payload's parts, in order. Throws RangeError on a field it cannot represent (a bug). */
  encode(msg: M): Buffer[];
  /** Reads the payload; the caller checks that it was consumed exactly. */
  decode(r: Reader, h: PlaintextHeader): M;
}

/** The records of a group of messages, one per type name. */
export type RecordsOf<U extends { type: string }> = {
  [K in U['type']]: MessageRecord<Extract<U, { type: K }>>;
};

/** The name of a closed-set value's code; an unknown code is ERR_MALFORMED. */
export function nameOf<T extends Record<string, number>>(
  table: T,
  code: number,
  what: string,
): keyof T & string {
  for (const [name, value] of Object.entries(table)) if (value === code) return name;
  throw new ProtocolError('ERR_MALFORMED', `unknown ${what} ${code}`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A bounds-checked reader over one payload; every read failure is ERR_MALFORMED. */
export class Reader {
  #off = 0;
  constructor(
    readonly buf: Buffer,
    readonly what: string,
  ) {}
  #need(n: number): void {
    if (this.#off + n > this.buf.length) {
      throw new ProtocolError('ERR_MALFORMED', `${this.what}: payload ends early`);
    }
  }
  u8(): number {
    this.#need(1);
    return this.buf.readUInt8(this.#off++);
  }
  u16(): number {
    this.#need(2);
    const v = this.buf.readUInt16BE(this.#off);
    this.#off += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.buf.readUInt32BE(this.#off);
    this.#off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.#need(n);
    const v = this.buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return Buffer.from(v);
  }
  /** u16 length | UTF-8 bytes (u8 length when `short`). */
  str(max: number, short = false): string {
    const n = short ? this.u8() : this.u16();
    if (n > max)
      throw new ProtocolError('ERR_MALFORMED', `${this.what}: string of ${n} bytes exceeds ${max}`);
    this.#need(n);
    let s: string;
    try {
      s = UTF8.decode(this.buf.subarray(this.#off, this.#off + n));
    } catch {
      throw new ProtocolError('ERR_MALFORMED', `${this.what}: string is not valid UTF-8`);
    }
    this.#off += n;
    return s;
  }
  /** The unread rest of the payload, as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.#off);
    this.#off = this.buf.length;
    return v;
  }
  end(): void {
    if (this.#off !== this.buf.length) {
      throw new ProtocolError('ERR_MALFORMED', `${this.what}: ${this.buf.length - this.#off} trailing bytes`);
    }
  }
  /** An address family byte: 4 or 6. */
  family(): 4 | 6 {
    const f = this.u8();
    if (f !== 4 && f !== 6) throw new ProtocolError('ERR_MALFORMED', `${this.what}: address family ${f}`);
    return f;
  }
}

/** A string's UTF-8 bytes; longer than `max` is a RangeError naming `field`. */
export function strBytes(s: string, max: number, field: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new RangeError(`${field} is ${b.length} bytes; at most ${max}`);
  return b;
}
export function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}
/** A `string` field: u16 length | UTF-8 bytes. */
export function lenStr(s: string, max: number, field: string): Buffer[] {
  const b = strBytes(s, max, field);
  return [u16(b.length), b];
}
/** The byte length of an address of `family` (4 or 6). */
export function addressLen(family: number, field: string): number {
  if (family === 4) return 4;
  if (family === 6) return 16;
  throw new RangeError(`${field} must be 4 or 6, got ${family}`);
}
/** `b`, checked to be exactly `n` bytes. */
export function fixed(b: Buffer, n: number, field: string): Buffer {
  if (b.length !== n) throw new RangeError(`${field} must be ${n} bytes, got ${b.length}`);
  return b;
}
