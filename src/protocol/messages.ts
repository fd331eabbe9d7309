/**
 * The wire format's message layer: type codes, the protocol version, the messages as a discriminated
 * union per direction, and their encoding. This file alone touches plaintext header bytes.
 *
 * plaintext = type u8 | flags u8 | stream_id u32 BE | payload   (docs/PROTOCOL.md, "Messages")
 */

import { ProtocolError } from './errors.js';
import { MAX_PAYLOAD, MAX_STRING_LEN, MAX_TUNNEL_NAME_LEN, PLAINTEXT_HEADER_LEN } from './limits.js';

/** The one protocol version this build speaks. Peers on another version are refused by name. */
export const PROTOCOL_VERSION = 1;

/** Message type codes (u8). */
export const MsgType = {
  ClientHello: 0x01,
  ServerHello: 0x02,
  ClientAuth: 0x03,
  AuthOk: 0x04,
  AuthFail: 0x05,
  DataHello: 0x06,
  DataHelloAck: 0x07,
  OpenTunnel: 0x10,
  CloseTunnel: 0x11,
  TunnelStatus: 0x12,
  IncomingConn: 0x20,
  DataConnReady: 0x21,
  Heartbeat: 0x30,
  Error: 0x31,
  Data: 0x40,
} as const;
export type MsgTypeName = keyof typeof MsgType;

/** The `role` byte of hellos. */
export const Role = { client: 1, server: 2, data: 3 } as const;

/** Flag bits. */
export const Flags = {
  /** Data: the sender will send no more bytes (TCP half-close). */
  FIN: 0x01,
  /** Heartbeat: this is the answer to a heartbeat. */
  REPLY: 0x01,
} as const;

/** AuthFail reasons: a closed set. */
export const AuthFailReason = {
  unknown_key: 1,
  bad_signature: 2,
  version_mismatch: 3,
  busy: 4,
  malformed: 5,
  unknown_session: 6,
  revoked: 7,
  internal: 8,
} as const;
export type AuthFailReasonName = keyof typeof AuthFailReason;

/** TunnelStatus states. */
export const TunnelState = { active: 0, refused: 1, closed: 2 } as const;
export type TunnelStateName = keyof typeof TunnelState;

/** TunnelStatus reasons: a closed set. */
export const TunnelReason = {
  none: 0,
  port_not_allowed: 1,
  port_in_use: 2,
  bind_failed: 3,
  duplicate_tunnel: 4,
  too_many_tunnels: 5,
  invalid: 6,
  closed_by_client: 7,
} as const;
export type TunnelReasonName = keyof typeof TunnelReason;

/** Error codes carried in Error messages: a closed set. */
export const ErrorCode = {
  protocol: 1,
  target_unreachable: 2,
  internal: 3,
  reset: 4,
  not_found: 5,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

export interface ClientHello {
  type: 'ClientHello';
  version: number;
  identityKey: Buffer;
  ephemeralKey: Buffer;
  nonce: Buffer;
}
export interface ServerHello {
  type: 'ServerHello';
  version: number;
  identityKey: Buffer;
  ephemeralKey: Buffer;
  nonce: Buffer;
  signature: Buffer;
}
export interface ClientAuth {
  type: 'ClientAuth';
  signature: Buffer;
}
export interface AuthOk {
  type: 'AuthOk';
  /** Heartbeat interval the server expects, in milliseconds. */
  heartbeatMs: number;
}
export interface AuthFail {
  type: 'AuthFail';
  reason: AuthFailReasonName;
  /** The PROTOCOL_VERSION of the sender. */
  version: number;
  message: string;
}
export interface DataHello {
  type: 'DataHello';
  version: number;
  sessionId: Buffer;
  nonce: Buffer;
}
export interface DataHelloAck {
  type: 'DataHelloAck';
  version: number;
  nonce: Buffer;
}
export interface OpenTunnel {
  type: 'OpenTunnel';
  tunnelId: number;
  remotePort: number;
  name: string;
}
export interface CloseTunnel {
  type: 'CloseTunnel';
  tunnelId: number;
}
export interface TunnelStatus {
  type: 'TunnelStatus';
  tunnelId: number;
  state: TunnelStateName;
  reason: TunnelReasonName;
  /** The public port actually bound (0 when refused). */
  port: number;
  /** The public address, "host:port", to show users. */
  address: string;
  message: string;
}
export interface IncomingConn {
  type: 'IncomingConn';
  connId: number;
  tunnelId: number;
  /** The external peer's address, for logs. */
  peer: string;
}
export interface DataConnReady {
  type: 'DataConnReady';
  connId: number;
}
export interface Heartbeat {
  type: 'Heartbeat';
  reply: boolean;
  seq: number;
}
export interface ErrorMsg {
  type: 'Error';
  /** conn_id or tunnel_id the error is about; 0 for the channel itself. */
  streamId: number;
  code: ErrorCodeName;
  message: string;
}
export interface Data {
  type: 'Data';
  fin: boolean;
  payload: Buffer;
  /**
   * The payload as the decoder decrypted it, in pieces, when the frame arrived in several reads: a
   * relay writes these without joining them (`payload` joins them on first use).
   */
  pieces?: readonly Buffer[];
}

/** A Data message whose payload is kept in pieces until someone reads `payload`. */
export function dataFromPieces(fin: boolean, pieces: readonly Buffer[]): Data {
  let joined: Buffer | undefined;
  return {
    type: 'Data',
    fin,
    pieces,
    get payload(): Buffer {
      joined ??= pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
      return joined;
    },
  };
}

/** Messages a client sends. */
export type ClientMessage =
  | ClientHello
  | ClientAuth
  | DataHello
  | OpenTunnel
  | CloseTunnel
  | DataConnReady
  | Heartbeat
  | ErrorMsg
  | Data;
/** Messages a server sends. */
export type ServerMessage =
  | ServerHello
  | AuthOk
  | AuthFail
  | DataHelloAck
  | TunnelStatus
  | IncomingConn
  | Heartbeat
  | ErrorMsg
  | Data;
/** Any message. */
export type Message = ClientMessage | ServerMessage;

const CLIENT_TYPES = new Set<number>([
  MsgType.ClientHello,
  MsgType.ClientAuth,
  MsgType.DataHello,
  MsgType.OpenTunnel,
  MsgType.CloseTunnel,
  MsgType.DataConnReady,
  MsgType.Heartbeat,
  MsgType.Error,
  MsgType.Data,
]);
const SERVER_TYPES = new Set<number>([
  MsgType.ServerHello,
  MsgType.AuthOk,
  MsgType.AuthFail,
  MsgType.DataHelloAck,
  MsgType.TunnelStatus,
  MsgType.IncomingConn,
  MsgType.Heartbeat,
  MsgType.Error,
  MsgType.Data,
]);

const KEY_LEN = 32;
const NONCE_LEN = 32;
const SIG_LEN = 64;
/** Length of a session id (derived by both sides, sent in DataHello). */
export const SESSION_ID_LEN = 16;

function nameOf<T extends Record<string, number>>(table: T, code: number, what: string): keyof T & string {
  for (const [name, value] of Object.entries(table)) if (value === code) return name;
  throw new ProtocolError('ERR_MALFORMED', `unknown ${what} ${code}`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A bounds-checked reader over one payload; every read failure is ERR_MALFORMED. */
class Reader {
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
  end(): void {
    if (this.#off !== this.buf.length) {
      throw new ProtocolError('ERR_MALFORMED', `${this.what}: ${this.buf.length - this.#off} trailing bytes`);
    }
  }
}

function strBytes(s: string, max: number, field: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new RangeError(`${field} is ${b.length} bytes; at most ${max}`);
  return b;
}
function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}
function lenStr(s: string, max: number, field: string): Buffer[] {
  const b = strBytes(s, max, field);
  return [u16(b.length), b];
}
function fixed(b: Buffer, n: number, field: string): Buffer {
  if (b.length !== n) throw new RangeError(`${field} must be ${n} bytes, got ${b.length}`);
  return b;
}

/** The header of a plaintext, separately from its payload (so Data need not copy its payload). */
export function encodeHeader(type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(PLAINTEXT_HEADER_LEN);
  h.writeUInt8(type, 0);
  h.writeUInt8(flags, 1);
  h.writeUInt32BE(streamId >>> 0, 2);
  return h;
}

/** Encodes a message as [header, ...payload parts]; concatenated, they are the plaintext. */
export function encodeMessageParts(msg: Message): Buffer[] {
  switch (msg.type) {
    case 'ClientHello':
      return [
        encodeHeader(MsgType.ClientHello, 0, 0),
        u16(msg.version),
        Buffer.of(Role.client),
        fixed(msg.identityKey, KEY_LEN, 'identityKey'),
        fixed(msg.ephemeralKey, KEY_LEN, 'ephemeralKey'),
        fixed(msg.nonce, NONCE_LEN, 'nonce'),
      ];
    case 'ServerHello':
      return [
        encodeHeader(MsgType.ServerHello, 0, 0),
        ...serverHelloBody(msg),
        fixed(msg.signature, SIG_LEN, 'signature'),
      ];
    case 'ClientAuth':
      return [encodeHeader(MsgType.ClientAuth, 0, 0), fixed(msg.signature, SIG_LEN, 'signature')];
    case 'AuthOk':
      return [encodeHeader(MsgType.AuthOk, 0, 0), u32(msg.heartbeatMs)];
    case 'AuthFail':
      return [
        encodeHeader(MsgType.AuthFail, 0, 0),
        Buffer.of(AuthFailReason[msg.reason]),
        u16(msg.version),
        ...lenStr(msg.message, MAX_STRING_LEN, 'message'),
      ];
    case 'DataHello':
      return [
        encodeHeader(MsgType.DataHello, 0, 0),
        u16(msg.version),
        Buffer.of(Role.data),
        fixed(msg.sessionId, SESSION_ID_LEN, 'sessionId'),
        fixed(msg.nonce, NONCE_LEN, 'nonce'),
      ];
    case 'DataHelloAck':
      return [
        encodeHeader(MsgType.DataHelloAck, 0, 0),
        u16(msg.version),
        fixed(msg.nonce, NONCE_LEN, 'nonce'),
      ];
    case 'OpenTunnel': {
      const name = strBytes(msg.name, MAX_TUNNEL_NAME_LEN, 'name');
      return [
        encodeHeader(MsgType.OpenTunnel, 0, msg.tunnelId),
        u16(msg.remotePort),
        Buffer.of(name.length),
        name,
      ];
    }
    case 'CloseTunnel':
      return [encodeHeader(MsgType.CloseTunnel, 0, msg.tunnelId)];
    case 'TunnelStatus':
      return [
        encodeHeader(MsgType.TunnelStatus, 0, msg.tunnelId),
        Buffer.of(TunnelState[msg.state], TunnelReason[msg.reason]),
        u16(msg.port),
        ...lenStr(msg.address, MAX_STRING_LEN, 'address'),
        ...lenStr(msg.message, MAX_STRING_LEN, 'message'),
      ];
    case 'IncomingConn':
      return [
        encodeHeader(MsgType.IncomingConn, 0, msg.connId),
        u32(msg.tunnelId),
        ...lenStr(msg.peer, MAX_STRING_LEN, 'peer'),
      ];
    case 'DataConnReady':
      return [encodeHeader(MsgType.DataConnReady, 0, msg.connId)];
    case 'Heartbeat':
      return [encodeHeader(MsgType.Heartbeat, msg.reply ? Flags.REPLY : 0, 0), u32(msg.seq)];
    case 'Error':
      return [
        encodeHeader(MsgType.Error, 0, msg.streamId),
        u16(ErrorCode[msg.code]),
        ...lenStr(msg.message, MAX_STRING_LEN, 'message'),
      ];
    case 'Data':
      if (msg.payload.length > MAX_PAYLOAD) {
        throw new RangeError(`Data payload of ${msg.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
      }
      return [encodeHeader(MsgType.Data, msg.fin ? Flags.FIN : 0, 0), msg.payload];
  }
}

/** The ServerHello fields that its signature covers (everything but the signature). */
function serverHelloBody(msg: Omit<ServerHello, 'type' | 'signature'>): Buffer[] {
  return [
    u16(msg.version),
    Buffer.of(Role.server),
    fixed(msg.identityKey, KEY_LEN, 'identityKey'),
    fixed(msg.ephemeralKey, KEY_LEN, 'ephemeralKey'),
    fixed(msg.nonce, NONCE_LEN, 'nonce'),
  ];
}

/** Encodes a message to its plaintext bytes. */
export function encodeMessage(msg: Message): Buffer {
  return Buffer.concat(encodeMessageParts(msg));
}

/** The plaintext of a ServerHello without its signature: what the server signs (with the ClientHello). */
export function encodeServerHelloUnsigned(msg: Omit<ServerHello, 'type' | 'signature'>): Buffer {
  return Buffer.concat([encodeHeader(MsgType.ServerHello, 0, 0), ...serverHelloBody(msg)]);
}

/** Reads a hello's version first, so a peer on another version is named as such, whatever follows. */
function helloVersion(r: Reader): number {
  const version = r.u16();
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'ERR_VERSION_MISMATCH',
      `the peer speaks protocol version ${version}, this build speaks ${PROTOCOL_VERSION}; upgrade the older side`,
    );
  }
  return version;
}

function expectRole(r: Reader, role: number, what: string): void {
  const got = r.u8();
  if (got !== role) throw new ProtocolError('ERR_MALFORMED', `${what}: role ${got}, expected ${role}`);
}

/**
 * Decodes one plaintext. Throws ProtocolError (ERR_MALFORMED, ERR_UNKNOWN_TYPE) on anything that is
 * not exactly a message of this version.
 */
export function decodeMessage(plaintext: Buffer): Message {
  if (plaintext.length < PLAINTEXT_HEADER_LEN) {
    throw new ProtocolError(
      'ERR_MALFORMED',
      `plaintext of ${plaintext.length} bytes is shorter than its header`,
    );
  }
  const type = plaintext.readUInt8(0);
  const flags = plaintext.readUInt8(1);
  const streamId = plaintext.readUInt32BE(2);
  const what = MSG_NAMES.get(type);
  if (what === undefined)
    throw new ProtocolError('ERR_UNKNOWN_TYPE', `unknown message type 0x${type.toString(16)}`);
  const knownFlags = type === MsgType.Data ? Flags.FIN : type === MsgType.Heartbeat ? Flags.REPLY : 0;
  if ((flags & ~knownFlags) !== 0)
    throw new ProtocolError('ERR_MALFORMED', `${what}: unknown flags 0x${flags.toString(16)}`);
  const r = new Reader(plaintext.subarray(PLAINTEXT_HEADER_LEN), what);
  const usesStream =
    type === MsgType.OpenTunnel ||
    type === MsgType.CloseTunnel ||
    type === MsgType.TunnelStatus ||
    type === MsgType.IncomingConn ||
    type === MsgType.DataConnReady ||
    type === MsgType.Error;
  if (!usesStream && streamId !== 0) throw new ProtocolError('ERR_MALFORMED', `${what}: stream_id must be 0`);
  let msg: Message;
  switch (type) {
    case MsgType.ClientHello: {
      const version = helloVersion(r);
      expectRole(r, Role.client, what);
      msg = {
        type: 'ClientHello',
        version,
        identityKey: r.bytes(KEY_LEN),
        ephemeralKey: r.bytes(KEY_LEN),
        nonce: r.bytes(NONCE_LEN),
      };
      break;
    }
    case MsgType.ServerHello: {
      const version = helloVersion(r);
      expectRole(r, Role.server, what);
      msg = {
        type: 'ServerHello',
        version,
        identityKey: r.bytes(KEY_LEN),
        ephemeralKey: r.bytes(KEY_LEN),
        nonce: r.bytes(NONCE_LEN),
        signature: r.bytes(SIG_LEN),
      };
      break;
    }
    case MsgType.ClientAuth:
      msg = { type: 'ClientAuth', signature: r.bytes(SIG_LEN) };
      break;
    case MsgType.AuthOk:
      msg = { type: 'AuthOk', heartbeatMs: r.u32() };
      break;
    case MsgType.AuthFail:
      msg = {
        type: 'AuthFail',
        reason: nameOf(AuthFailReason, r.u8(), 'AuthFail reason'),
        version: r.u16(),
        message: r.str(MAX_STRING_LEN),
      };
      break;
    case MsgType.DataHello: {
      const version = helloVersion(r);
      expectRole(r, Role.data, what);
      msg = { type: 'DataHello', version, sessionId: r.bytes(SESSION_ID_LEN), nonce: r.bytes(NONCE_LEN) };
      break;
    }
    case MsgType.DataHelloAck:
      msg = { type: 'DataHelloAck', version: helloVersion(r), nonce: r.bytes(NONCE_LEN) };
      break;
    case MsgType.OpenTunnel: {
      const remotePort = r.u16();
      msg = { type: 'OpenTunnel', tunnelId: streamId, remotePort, name: r.str(MAX_TUNNEL_NAME_LEN, true) };
      break;
    }
    case MsgType.CloseTunnel:
      msg = { type: 'CloseTunnel', tunnelId: streamId };
      break;
    case MsgType.TunnelStatus:
      msg = {
        type: 'TunnelStatus',
        tunnelId: streamId,
        state: nameOf(TunnelState, r.u8(), 'tunnel state'),
        reason: nameOf(TunnelReason, r.u8(), 'tunnel reason'),
        port: r.u16(),
        address: r.str(MAX_STRING_LEN),
        message: r.str(MAX_STRING_LEN),
      };
      break;
    case MsgType.IncomingConn:
      msg = { type: 'IncomingConn', connId: streamId, tunnelId: r.u32(), peer: r.str(MAX_STRING_LEN) };
      break;
    case MsgType.DataConnReady:
      msg = { type: 'DataConnReady', connId: streamId };
      break;
    case MsgType.Heartbeat:
      msg = { type: 'Heartbeat', reply: (flags & Flags.REPLY) !== 0, seq: r.u32() };
      break;
    case MsgType.Error:
      msg = {
        type: 'Error',
        streamId,
        code: nameOf(ErrorCode, r.u16(), 'error code'),
        message: r.str(MAX_STRING_LEN),
      };
      break;
    case MsgType.Data: {
      const payload = plaintext.subarray(PLAINTEXT_HEADER_LEN);
      if (payload.length > MAX_PAYLOAD)
        throw new ProtocolError('ERR_MALFORMED', `Data payload exceeds ${MAX_PAYLOAD}`);
      return { type: 'Data', fin: (flags & Flags.FIN) !== 0, payload };
    }
    default:
      throw new ProtocolError('ERR_UNKNOWN_TYPE', `unknown message type 0x${type.toString(16)}`);
  }
  r.end();
  return msg;
}

const MSG_NAMES = new Map<number, string>(Object.entries(MsgType).map(([k, v]) => [v, k]));

/** Decodes a message a client sent; a server-only type is ERR_UNEXPECTED_MESSAGE. */
export function decodeClientMessage(plaintext: Buffer): ClientMessage {
  const type = plaintext.length > 0 ? plaintext.readUInt8(0) : -1;
  if (!CLIENT_TYPES.has(type)) throw unexpected(type, 'client');
  return decodeMessage(plaintext) as ClientMessage;
}

/** Decodes a message a server sent; a client-only type is ERR_UNEXPECTED_MESSAGE. */
export function decodeServerMessage(plaintext: Buffer): ServerMessage {
  const type = plaintext.length > 0 ? plaintext.readUInt8(0) : -1;
  if (!SERVER_TYPES.has(type)) throw unexpected(type, 'server');
  return decodeMessage(plaintext) as ServerMessage;
}

function unexpected(type: number, from: string): ProtocolError {
  const name = MSG_NAMES.get(type);
  if (name === undefined)
    return new ProtocolError('ERR_UNKNOWN_TYPE', `unknown message type 0x${type.toString(16)}`);
  return new ProtocolError('ERR_UNEXPECTED_MESSAGE', `a ${from} never sends ${name}`);
}
