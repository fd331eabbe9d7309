/** D-Bus message framing: the fixed header, header fields and body, and a stream splitter. */
import { DBusWireError, MAX_MESSAGE_BYTES, Variant, WireReader, WireWriter } from './marshal.js';

/** Message types on the wire. */
export const MessageType = { MethodCall: 1, MethodReturn: 2, Error: 3, Signal: 4 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Header flag: the caller does not want a reply. */
export const FLAG_NO_REPLY_EXPECTED = 0x1;

/** The header fields we read and write: name in DBusMessage, code and signature on the wire. */
const FIELDS = {
  path: { code: 1, sig: 'o' },
  interface: { code: 2, sig: 's' },
  member: { code: 3, sig: 's' },
  errorName: { code: 4, sig: 's' },
  replySerial: { code: 5, sig: 'u' },
  destination: { code: 6, sig: 's' },
  sender: { code: 7, sig: 's' },
  signature: { code: 8, sig: 'g' },
} as const;
type FieldName = keyof typeof FIELDS;
const FIELD_BY_CODE = new Map(
  Object.entries(FIELDS).map(([name, f]) => [f.code as number, name as FieldName]),
);

/** One D-Bus message, decoded. */
export interface DBusMessage {
  type: MessageType;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  /** Body signature ('' for no body). */
  signature: string;
  body: unknown[];
}

/** Serialises a message (little-endian) with the given serial. */
export function encodeMessage(msg: Omit<DBusMessage, 'serial'>, serial: number): Buffer {
  const body = new WireWriter();
  if (msg.signature !== '') body.write(msg.signature, msg.body);
  const bodyBytes = body.result();

  const fields: [number, Variant][] = [];
  for (const [name, { code, sig }] of Object.entries(FIELDS)) {
    const value = msg[name as FieldName];
    // The signature field is written only when there is a body.
    if (value === undefined || (name === 'signature' && value === '')) continue;
    fields.push([code, new Variant(sig, value)]);
  }

  const head = new WireWriter();
  head.byte('l'.charCodeAt(0));
  head.byte(msg.type);
  head.byte(msg.flags);
  head.byte(1);
  head.uint32(bodyBytes.length);
  head.uint32(serial);
  head.write('a(yv)', [fields]);
  head.align(8);
  const out = Buffer.concat([head.result(), bodyBytes]);
  if (out.length > MAX_MESSAGE_BYTES) throw new DBusWireError('message too large');
  return out;
}

/** Splits a byte stream into messages; checks sizes before buffering a message. */
export class MessageSplitter {
  #pending: Buffer[] = [];
  #pendingLen = 0;

  /** Feeds bytes; returns every message completed by them. */
  push(chunk: Buffer): DBusMessage[] {
    this.#pending.push(chunk);
    this.#pendingLen += chunk.length;
    const out: DBusMessage[] = [];
    for (;;) {
      if (this.#pendingLen < 16) break;
      let buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
      this.#pending = [buf];
      const le = buf[0] === 0x6c;
      if (!le && buf[0] !== 0x42) throw new DBusWireError('bad endianness byte');
      const bodyLen = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
      const fieldsLen = le ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
      const headerLen = 16 + fieldsLen + ((8 - (fieldsLen % 8)) % 8);
      const total = headerLen + bodyLen;
      if (total > MAX_MESSAGE_BYTES || fieldsLen > MAX_MESSAGE_BYTES)
        throw new DBusWireError('message too large');
      if (buf.length < total) break;
      out.push(decodeMessage(buf.subarray(0, total)));
      buf = buf.subarray(total);
      this.#pending = buf.length > 0 ? [buf] : [];
      this.#pendingLen = buf.length;
    }
    return out;
  }
}

/** Decodes exactly one complete message. */
export function decodeMessage(buf: Buffer): DBusMessage {
  const le = buf[0] === 0x6c;
  const r = new WireReader(buf, { offset: 4, littleEndian: le });
  const type = buf[1] as MessageType;
  const flags = buf[2]!;
  if (buf[3] !== 1) throw new DBusWireError(`unsupported protocol version ${buf[3]}`);
  const bodyLen = r.uint32();
  const serial = r.uint32();
  const [fields] = r.read('a(yv)') as [[number, Variant][]];
  r.align(8);
  const msg: DBusMessage = { type, flags, serial, signature: '', body: [] };
  for (const [code, v] of fields) {
    const name = FIELD_BY_CODE.get(code);
    // Unknown fields must be ignored (unix fds and future additions).
    if (name !== undefined) (msg as unknown as Record<FieldName, unknown>)[name] = v.value;
  }
  const bodyStart = r.offset;
  if (bodyStart + bodyLen !== buf.length) throw new DBusWireError('body length does not match');
  if (msg.signature !== '') {
    const body = new WireReader(buf, { offset: bodyStart, littleEndian: le });
    msg.body = body.read(msg.signature);
    if (body.offset !== buf.length) throw new DBusWireError('body longer than its signature says');
  }
  return msg;
}
