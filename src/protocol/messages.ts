/**
 * The wire format's message layer: the one table of message records, and the plaintext header. This
 * file alone reads and writes header bytes; the records (code, sender, stream_id use, flags, encode,
 * decode) live in one file per group and are joined here:
 *
 * - handshake-messages.ts: ClientHello, ServerHello, ClientAuth, AuthOk, AuthFail, DataHello, DataHelloAck
 * - tunnel-messages.ts: OpenTunnel, CloseTunnel, TunnelStatus
 * - channel-messages.ts: IncomingConn, ChannelsWanted, Heartbeat, Error, Data
 *
 * Adding a message = its interface and record in its group (plus its vector in docs/PROTOCOL.md); the
 * direction unions, the code table and the checks below are derived from the records.
 *
 * plaintext = type u8 | flags u8 | stream_id u32 BE | payload   (docs/PROTOCOL.md, "Messages")
 */

import { CHANNEL_MESSAGES, type ChannelMessage } from './channel-messages.js';
import { ProtocolError } from './errors.js';
import { HANDSHAKE_MESSAGES, type HandshakeMessage, type ServerHello } from './handshake-messages.js';
import { PLAINTEXT_HEADER_LEN } from './limits.js';
import { Flags, type MessageRecord, type PlaintextHeader, Reader, type RecordsOf } from './message-record.js';
import { TUNNEL_MESSAGES, type TunnelMessage } from './tunnel-messages.js';

export * from './channel-messages.js';
export * from './handshake-messages.js';
export { Flags, type MessageRecord, type PlaintextHeader, Reader, type Sender } from './message-record.js';
export * from './tunnel-messages.js';

/** Any message. */
export type Message = HandshakeMessage | TunnelMessage | ChannelMessage;

/** The message table. Adding a message = one record in its group (plus its vector in docs/PROTOCOL.md). */
export const MESSAGES = {
  ...HANDSHAKE_MESSAGES,
  ...TUNNEL_MESSAGES,
  ...CHANNEL_MESSAGES,
} as const satisfies RecordsOf<Message>;

type Table = typeof MESSAGES;
/** The messages whose record says `side` (or 'both') sends them. */
type SentBy<Side extends 'client' | 'server'> = {
  [K in keyof Table]: Table[K]['from'] extends Side | 'both' ? Extract<Message, { type: K }> : never;
}[keyof Table];

/** Messages a client sends. */
export type ClientMessage = SentBy<'client'>;
/** Messages a server sends. */
export type ServerMessage = SentBy<'server'>;

/** Message type codes (u8), by name: derived from the table. */
export const MsgType = Object.fromEntries(Object.entries(MESSAGES).map(([name, r]) => [name, r.code])) as {
  readonly [K in keyof Table]: Table[K]['code'];
};
export type MsgTypeName = keyof Table;

/** Records by type code, with their names. */
const BY_CODE = new Map<number, { name: MsgTypeName; record: MessageRecord }>(
  Object.entries(MESSAGES).map(([name, record]) => [
    record.code,
    { name: name as MsgTypeName, record: record as unknown as MessageRecord },
  ]),
);
if (BY_CODE.size !== Object.keys(MESSAGES).length) throw new Error('two message records share a code');

/** The record of a type code, or undefined for an unknown code. */
export function messageRecord(code: number): (MessageRecord & { name: MsgTypeName }) | undefined {
  const e = BY_CODE.get(code);
  return e ? { ...e.record, name: e.name } : undefined;
}

/** True when `side` may send the type `code`. */
export function sentBy(code: number, side: 'client' | 'server'): boolean {
  const from = BY_CODE.get(code)?.record.from;
  return from === side || from === 'both';
}

/** The header of a plaintext, separately from its payload (so Data need not copy its payload). */
function encodeHeader(type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(PLAINTEXT_HEADER_LEN);
  h.writeUInt8(type, 0);
  h.writeUInt8(flags, 1);
  h.writeUInt32BE(streamId >>> 0, 2);
  return h;
}

/** Encodes a message as [header, ...payload parts]; concatenated, they are the plaintext. */
export function encodeMessageParts(msg: Message): Buffer[] {
  const record = MESSAGES[msg.type] as unknown as MessageRecord;
  const { flags = 0, streamId = 0 } = record.header(msg);
  return [encodeHeader(record.code, flags, streamId), ...record.encode(msg)];
}

/** Encodes a message to its plaintext bytes. */
export function encodeMessage(msg: Message): Buffer {
  return Buffer.concat(encodeMessageParts(msg));
}

/** The plaintext of a ServerHello without its signature: what the server signs (with the ClientHello). */
export function encodeServerHelloUnsigned(msg: Omit<ServerHello, 'type' | 'signature'>): Buffer {
  // The ServerHello record writes the signature as its last part; a placeholder stands in and is dropped.
  const parts = encodeMessageParts({ ...msg, type: 'ServerHello', signature: Buffer.alloc(64) });
  return Buffer.concat(parts.slice(0, -1));
}

/**
 * Reads and checks a plaintext header against its record: a known type, known flags, and stream_id 0
 * where the type does not use it.
 */
function readHeader(plaintext: Buffer): { h: PlaintextHeader; name: MsgTypeName; record: MessageRecord } {
  if (plaintext.length < PLAINTEXT_HEADER_LEN) {
    throw new ProtocolError(
      'ERR_MALFORMED',
      `plaintext of ${plaintext.length} bytes is shorter than its header`,
    );
  }
  const h: PlaintextHeader = {
    type: plaintext.readUInt8(0),
    flags: plaintext.readUInt8(1),
    streamId: plaintext.readUInt32BE(2),
  };
  const e = BY_CODE.get(h.type);
  if (e === undefined)
    throw new ProtocolError('ERR_UNKNOWN_TYPE', `unknown message type 0x${h.type.toString(16)}`);
  if ((h.flags & ~e.record.knownFlags) !== 0)
    throw new ProtocolError('ERR_MALFORMED', `${e.name}: unknown flags 0x${h.flags.toString(16)}`);
  if (!e.record.usesStream && h.streamId !== 0)
    throw new ProtocolError('ERR_MALFORMED', `${e.name}: stream_id must be 0`);
  return { h, ...e };
}

/**
 * Decodes one plaintext. Throws ProtocolError (ERR_MALFORMED, ERR_UNKNOWN_TYPE) on anything that is
 * not exactly a message of this version.
 */
export function decodeMessage(plaintext: Buffer): Message {
  const { h, name, record } = readHeader(plaintext);
  const r = new Reader(plaintext.subarray(PLAINTEXT_HEADER_LEN), name);
  const msg = record.decode(r, h);
  r.end();
  return msg as Message;
}

/**
 * For the streamed path (a large stored frame decrypted in pieces): reads the plaintext header at the
 * start of `head` and, when it is a valid Data header, returns its FIN flag and where the payload
 * starts. Undefined for any other type (decode that frame whole with decodeMessage). Throws like
 * decodeMessage on a bad Data header.
 */
export function decodeDataHeader(head: Buffer): { fin: boolean; payloadOffset: number } | undefined {
  if (head.length < PLAINTEXT_HEADER_LEN || head.readUInt8(0) !== MsgType.Data) return undefined;
  const { h } = readHeader(head.subarray(0, PLAINTEXT_HEADER_LEN));
  return { fin: (h.flags & Flags.FIN) !== 0, payloadOffset: PLAINTEXT_HEADER_LEN };
}

/** Decodes a message a client sent; a server-only type is ERR_UNEXPECTED_MESSAGE. */
export function decodeClientMessage(plaintext: Buffer): ClientMessage {
  checkSender(plaintext, 'client');
  return decodeMessage(plaintext) as ClientMessage;
}

/** Decodes a message a server sent; a client-only type is ERR_UNEXPECTED_MESSAGE. */
export function decodeServerMessage(plaintext: Buffer): ServerMessage {
  checkSender(plaintext, 'server');
  return decodeMessage(plaintext) as ServerMessage;
}

function checkSender(plaintext: Buffer, from: 'client' | 'server'): void {
  const type = plaintext.length > 0 ? plaintext.readUInt8(0) : -1;
  if (sentBy(type, from)) return;
  const e = BY_CODE.get(type);
  if (e === undefined)
    throw new ProtocolError('ERR_UNKNOWN_TYPE', `unknown message type 0x${type.toString(16)}`);
  throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `a ${from} never sends ${e.name}`);
}
