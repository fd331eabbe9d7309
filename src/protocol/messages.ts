/**
 * The wire format's message layer: type codes, the protocol version, the messages as a discriminated
 * union per direction, and their encoding. This file alone touches plaintext header bytes.
 *
 * plaintext = type u8 | flags u8 | stream_id u32 BE | payload   (docs/PROTOCOL.md, "Messages")
 */

import { ProtocolError } from './errors.js';
import {
  MAX_AUTH_PORT_RANGES,
  MAX_PAYLOAD,
  MAX_PERMIT_FROM,
  MAX_STRING_LEN,
  MAX_TUNNEL_NAME_LEN,
  PLAINTEXT_HEADER_LEN,
} from './limits.js';

/** The one protocol version this build speaks. Peers on another version are refused by name. */
export const PROTOCOL_VERSION = 2;

/** The `role` byte of hellos. */
export const Role = { client: 1, server: 2, data: 3 } as const;

/** Flag bits. */
export const Flags = {
  /** Data: the sender will send no more bytes (TCP half-close). */
  FIN: 0x01,
  /** Heartbeat: this is the answer to a heartbeat. */
  REPLY: 0x01,
  /** OpenTunnel: neither end compresses the frames of this tunnel's connections. */
  NO_COMPRESS: 0x01,
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
  in_use: 9,
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
  revoked: 8,
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
/** An inclusive range of TCP ports. */
export interface PortSpan {
  low: number;
  high: number;
}
/** An address block (CIDR): the first `prefix` bits of `address` (4 or 16 bytes). */
export interface AddressBlock {
  family: 4 | 6;
  prefix: number;
  address: Buffer;
}
export interface AuthOk {
  type: 'AuthOk';
  /** Heartbeat interval the server expects, in milliseconds. */
  heartbeatMs: number;
  /** The ports this key may open: the server's --allow-ports intersected with the key's permitlisten. */
  allowedPorts: PortSpan[];
  /** The key's ceiling on connections per tunnel; 0 = none. */
  maxConnections: number;
  /** The key's ceiling on each tunnel's rate, bytes per second each way; 0 = none. */
  rateLimit: number;
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
  /** False sets NO_COMPRESS: neither end compresses this tunnel's frames. */
  compress: boolean;
  /** Connections open at once on this tunnel; 0 = no limit. */
  maxConnections: number;
  /** Bytes per second each way on this tunnel; 0 = no limit. */
  rateLimit: number;
  /** Visitors the tunnel accepts (empty = anyone the server allows); at most MAX_PERMIT_FROM. */
  permitFrom: AddressBlock[];
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
  /** Effective connection limit after the key's ceiling; 0 = none. */
  maxConnections: number;
  /** Effective rate limit after the key's ceiling, bytes per second each way; 0 = none. */
  rateLimit: number;
}
/** Sent on an idle data channel: this channel now carries the visitor conn_id. */
export interface IncomingConn {
  type: 'IncomingConn';
  connId: number;
  tunnelId: number;
  /** 4 or 6: the length of both addresses (4 or 16 bytes); an IPv4-mapped IPv6 visitor is 4. */
  family: 4 | 6;
  /** The visitor's address and port. */
  srcAddr: Buffer;
  srcPort: number;
  /** The public address and port the visitor connected to. */
  dstAddr: Buffer;
  dstPort: number;
}
/** The server has visitors waiting and no idle channel: open this many more. */
export interface ChannelsWanted {
  type: 'ChannelsWanted';
  count: number;
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
  | ChannelsWanted
  | Heartbeat
  | ErrorMsg
  | Data;
/** Any message. */
export type Message = ClientMessage | ServerMessage;

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
function addressLen(family: number, field: string): number {
  if (family === 4) return 4;
  if (family === 6) return 16;
  throw new RangeError(`${field} must be 4 or 6, got ${family}`);
}
function readFamily(r: Reader): 4 | 6 {
  const f = r.u8();
  if (f !== 4 && f !== 6) throw new ProtocolError('ERR_MALFORMED', `${r.what}: address family ${f}`);
  return f;
}
function fixed(b: Buffer, n: number, field: string): Buffer {
  if (b.length !== n) throw new RangeError(`${field} must be ${n} bytes, got ${b.length}`);
  return b;
}

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
export interface MessageRecord<M extends Message = Message> {
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

type ByName = { [K in Message['type']]: MessageRecord<Extract<Message, { type: K }>> };

/** The message table. Adding a message = one record here (plus its vector in docs/PROTOCOL.md). */
export const MESSAGES = {
  ClientHello: {
    code: 0x01,
    from: 'client',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [
      u16(m.version),
      Buffer.of(Role.client),
      fixed(m.identityKey, KEY_LEN, 'identityKey'),
      fixed(m.ephemeralKey, KEY_LEN, 'ephemeralKey'),
      fixed(m.nonce, NONCE_LEN, 'nonce'),
    ],
    decode: (r) => {
      const version = helloVersion(r);
      expectRole(r, Role.client);
      return {
        type: 'ClientHello',
        version,
        identityKey: r.bytes(KEY_LEN),
        ephemeralKey: r.bytes(KEY_LEN),
        nonce: r.bytes(NONCE_LEN),
      };
    },
  },
  ServerHello: {
    code: 0x02,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [...serverHelloBody(m), fixed(m.signature, SIG_LEN, 'signature')],
    decode: (r) => {
      const version = helloVersion(r);
      expectRole(r, Role.server);
      return {
        type: 'ServerHello',
        version,
        identityKey: r.bytes(KEY_LEN),
        ephemeralKey: r.bytes(KEY_LEN),
        nonce: r.bytes(NONCE_LEN),
        signature: r.bytes(SIG_LEN),
      };
    },
  },
  ClientAuth: {
    code: 0x03,
    from: 'client',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [fixed(m.signature, SIG_LEN, 'signature')],
    decode: (r) => ({ type: 'ClientAuth', signature: r.bytes(SIG_LEN) }),
  },
  AuthOk: {
    code: 0x04,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => {
      if (m.allowedPorts.length > MAX_AUTH_PORT_RANGES) {
        throw new RangeError(
          `allowedPorts has ${m.allowedPorts.length} ranges; at most ${MAX_AUTH_PORT_RANGES}`,
        );
      }
      return [
        u32(m.heartbeatMs),
        u16(m.allowedPorts.length),
        ...m.allowedPorts.flatMap((p) => [u16(p.low), u16(p.high)]),
        u32(m.maxConnections),
        u32(m.rateLimit),
      ];
    },
    decode: (r) => {
      const heartbeatMs = r.u32();
      const n = r.u16();
      if (n > MAX_AUTH_PORT_RANGES)
        throw new ProtocolError('ERR_MALFORMED', `AuthOk: ${n} port ranges; at most ${MAX_AUTH_PORT_RANGES}`);
      const allowedPorts: PortSpan[] = [];
      for (let i = 0; i < n; i++) {
        const low = r.u16();
        const high = r.u16();
        if (low < 1 || low > high)
          throw new ProtocolError('ERR_MALFORMED', `AuthOk: port range ${low}-${high} is not a range`);
        allowedPorts.push({ low, high });
      }
      return { type: 'AuthOk', heartbeatMs, allowedPorts, maxConnections: r.u32(), rateLimit: r.u32() };
    },
  },
  AuthFail: {
    code: 0x05,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [
      Buffer.of(AuthFailReason[m.reason]),
      u16(m.version),
      ...lenStr(m.message, MAX_STRING_LEN, 'message'),
    ],
    decode: (r) => ({
      type: 'AuthFail',
      reason: nameOf(AuthFailReason, r.u8(), 'AuthFail reason'),
      version: r.u16(),
      message: r.str(MAX_STRING_LEN),
    }),
  },
  DataHello: {
    code: 0x06,
    from: 'client',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [
      u16(m.version),
      Buffer.of(Role.data),
      fixed(m.sessionId, SESSION_ID_LEN, 'sessionId'),
      fixed(m.nonce, NONCE_LEN, 'nonce'),
    ],
    decode: (r) => {
      const version = helloVersion(r);
      expectRole(r, Role.data);
      return { type: 'DataHello', version, sessionId: r.bytes(SESSION_ID_LEN), nonce: r.bytes(NONCE_LEN) };
    },
  },
  DataHelloAck: {
    code: 0x07,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [u16(m.version), fixed(m.nonce, NONCE_LEN, 'nonce')],
    decode: (r) => ({ type: 'DataHelloAck', version: helloVersion(r), nonce: r.bytes(NONCE_LEN) }),
  },
  OpenTunnel: {
    code: 0x10,
    from: 'client',
    usesStream: true,
    knownFlags: Flags.NO_COMPRESS,
    header: (m) => ({ streamId: m.tunnelId, flags: m.compress ? 0 : Flags.NO_COMPRESS }),
    encode: (m) => {
      const name = strBytes(m.name, MAX_TUNNEL_NAME_LEN, 'name');
      if (m.permitFrom.length > MAX_PERMIT_FROM) {
        throw new RangeError(`permitFrom has ${m.permitFrom.length} blocks; at most ${MAX_PERMIT_FROM}`);
      }
      return [
        u16(m.remotePort),
        Buffer.of(name.length),
        name,
        u32(m.maxConnections),
        u32(m.rateLimit),
        Buffer.of(m.permitFrom.length),
        ...m.permitFrom.flatMap((b) => {
          const len = addressLen(b.family, 'permitFrom family');
          if (b.prefix > len * 8) throw new RangeError(`permitFrom prefix /${b.prefix} is too long`);
          return [Buffer.of(b.family, b.prefix), fixed(b.address, len, 'permitFrom address')];
        }),
      ];
    },
    decode: (r, h) => {
      const remotePort = r.u16();
      const name = r.str(MAX_TUNNEL_NAME_LEN, true);
      const maxConnections = r.u32();
      const rateLimit = r.u32();
      const n = r.u8();
      if (n > MAX_PERMIT_FROM)
        throw new ProtocolError(
          'ERR_MALFORMED',
          `OpenTunnel: ${n} permit-from blocks; at most ${MAX_PERMIT_FROM}`,
        );
      const permitFrom: AddressBlock[] = [];
      for (let i = 0; i < n; i++) {
        const family = readFamily(r);
        const prefix = r.u8();
        if (prefix > (family === 4 ? 32 : 128))
          throw new ProtocolError('ERR_MALFORMED', `OpenTunnel: prefix /${prefix} for IPv${family}`);
        permitFrom.push({ family, prefix, address: r.bytes(family === 4 ? 4 : 16) });
      }
      return {
        type: 'OpenTunnel',
        tunnelId: h.streamId,
        remotePort,
        name,
        compress: (h.flags & Flags.NO_COMPRESS) === 0,
        maxConnections,
        rateLimit,
        permitFrom,
      };
    },
  },
  CloseTunnel: {
    code: 0x11,
    from: 'client',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.tunnelId }),
    encode: () => [],
    decode: (_r, h) => ({ type: 'CloseTunnel', tunnelId: h.streamId }),
  },
  TunnelStatus: {
    code: 0x12,
    from: 'server',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.tunnelId }),
    encode: (m) => [
      Buffer.of(TunnelState[m.state], TunnelReason[m.reason]),
      u16(m.port),
      ...lenStr(m.address, MAX_STRING_LEN, 'address'),
      ...lenStr(m.message, MAX_STRING_LEN, 'message'),
      u32(m.maxConnections),
      u32(m.rateLimit),
    ],
    decode: (r, h) => ({
      type: 'TunnelStatus',
      tunnelId: h.streamId,
      state: nameOf(TunnelState, r.u8(), 'tunnel state'),
      reason: nameOf(TunnelReason, r.u8(), 'tunnel reason'),
      port: r.u16(),
      address: r.str(MAX_STRING_LEN),
      message: r.str(MAX_STRING_LEN),
      maxConnections: r.u32(),
      rateLimit: r.u32(),
    }),
  },
  IncomingConn: {
    code: 0x20,
    from: 'server',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.connId }),
    encode: (m) => {
      const len = addressLen(m.family, 'IncomingConn family');
      return [
        u32(m.tunnelId),
        Buffer.of(m.family),
        fixed(m.srcAddr, len, 'srcAddr'),
        u16(m.srcPort),
        fixed(m.dstAddr, len, 'dstAddr'),
        u16(m.dstPort),
      ];
    },
    decode: (r, h) => {
      const tunnelId = r.u32();
      const family = readFamily(r);
      const len = family === 4 ? 4 : 16;
      return {
        type: 'IncomingConn',
        connId: h.streamId,
        tunnelId,
        family,
        srcAddr: r.bytes(len),
        srcPort: r.u16(),
        dstAddr: r.bytes(len),
        dstPort: r.u16(),
      };
    },
  },
  ChannelsWanted: {
    code: 0x22,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [u16(m.count)],
    decode: (r) => ({ type: 'ChannelsWanted', count: r.u16() }),
  },
  Heartbeat: {
    code: 0x30,
    from: 'both',
    usesStream: false,
    knownFlags: Flags.REPLY,
    header: (m) => ({ flags: m.reply ? Flags.REPLY : 0 }),
    encode: (m) => [u32(m.seq)],
    decode: (r, h) => ({ type: 'Heartbeat', reply: (h.flags & Flags.REPLY) !== 0, seq: r.u32() }),
  },
  Error: {
    code: 0x31,
    from: 'both',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.streamId }),
    encode: (m) => [u16(ErrorCode[m.code]), ...lenStr(m.message, MAX_STRING_LEN, 'message')],
    decode: (r, h) => ({
      type: 'Error',
      streamId: h.streamId,
      code: nameOf(ErrorCode, r.u16(), 'error code'),
      message: r.str(MAX_STRING_LEN),
    }),
  },
  Data: {
    code: 0x40,
    from: 'both',
    usesStream: false,
    knownFlags: Flags.FIN,
    header: (m) => ({ flags: m.fin ? Flags.FIN : 0 }),
    encode: (m) => {
      if (m.payload.length > MAX_PAYLOAD) {
        throw new RangeError(`Data payload of ${m.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
      }
      return [m.payload];
    },
    decode: (r, h) => {
      const payload = r.rest();
      if (payload.length > MAX_PAYLOAD)
        throw new ProtocolError('ERR_MALFORMED', `Data payload exceeds ${MAX_PAYLOAD}`);
      return { type: 'Data', fin: (h.flags & Flags.FIN) !== 0, payload };
    },
  },
} as const satisfies ByName;

/** Message type codes (u8), by name: derived from the table. */
export const MsgType = Object.fromEntries(Object.entries(MESSAGES).map(([name, r]) => [name, r.code])) as {
  readonly [K in keyof typeof MESSAGES]: (typeof MESSAGES)[K]['code'];
};
export type MsgTypeName = keyof typeof MESSAGES;

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

function expectRole(r: Reader, role: number): void {
  const got = r.u8();
  if (got !== role) throw new ProtocolError('ERR_MALFORMED', `${r.what}: role ${got}, expected ${role}`);
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
  return msg;
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
