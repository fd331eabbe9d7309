/**
 * The handshake group of message records: the control channel's hellos and authentication, and a data
 * channel's hello (docs/PROTOCOL.md, "Handshake" and "Data channels"). The state machines that use
 * them are in handshake.ts.
 */

import { ProtocolError } from './errors.js';
import { MAX_AUTH_PORT_RANGES, MAX_STRING_LEN } from './limits.js';
import { fixed, lenStr, nameOf, type Reader, type RecordsOf, u16, u32 } from './message-record.js';

/** The one protocol version this build speaks. Peers on another version are refused by name. */
export const PROTOCOL_VERSION = 2;

/** The `role` byte of hellos. */
export const Role = { client: 1, server: 2, data: 3 } as const;

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

const KEY_LEN = 32;
const NONCE_LEN = 32;
const SIG_LEN = 64;
/** Length of a session id (derived by both sides, sent in DataHello). */
export const SESSION_ID_LEN = 16;

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

/** The messages of this group. */
export type HandshakeMessage =
  | ClientHello
  | ServerHello
  | ClientAuth
  | AuthOk
  | AuthFail
  | DataHello
  | DataHelloAck;

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

/** The fields ClientHello and ServerHello share. */
type HelloFields = Pick<ClientHello, 'version' | 'identityKey' | 'ephemeralKey' | 'nonce'>;

/** `version u16 | role u8 | identity_key[32] | ephemeral_key[32] | nonce[32]` */
function writeHello(m: HelloFields, role: number): Buffer[] {
  return [
    u16(m.version),
    Buffer.of(role),
    fixed(m.identityKey, KEY_LEN, 'identityKey'),
    fixed(m.ephemeralKey, KEY_LEN, 'ephemeralKey'),
    fixed(m.nonce, NONCE_LEN, 'nonce'),
  ];
}

function readHello(r: Reader, role: number): HelloFields {
  const version = helloVersion(r);
  expectRole(r, role);
  return {
    version,
    identityKey: r.bytes(KEY_LEN),
    ephemeralKey: r.bytes(KEY_LEN),
    nonce: r.bytes(NONCE_LEN),
  };
}

/** The handshake records. */
export const HANDSHAKE_MESSAGES = {
  ClientHello: {
    code: 0x01,
    from: 'client',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [...writeHello(m, Role.client)],
    decode: (r) => ({ type: 'ClientHello', ...readHello(r, Role.client) }),
  },
  ServerHello: {
    code: 0x02,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    // The signature is the last part: encodeServerHelloUnsigned (messages.ts) drops it.
    encode: (m) => [...writeHello(m, Role.server), fixed(m.signature, SIG_LEN, 'signature')],
    decode: (r) => ({ type: 'ServerHello', ...readHello(r, Role.server), signature: r.bytes(SIG_LEN) }),
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
} as const satisfies RecordsOf<HandshakeMessage>;
