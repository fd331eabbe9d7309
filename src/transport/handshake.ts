/**
 * Runs the protocol's handshake state machines over a FramedConnection, with one deadline for the
 * whole exchange.
 */
import { AuthRejectedError, ProtocolError } from '../protocol/errors.js';
import {
  acceptDataHello,
  type ChannelKeys,
  ClientHandshake,
  DataClientHandshake,
  type HandshakeFixtures,
  type HandshakeIdentity,
  ServerHandshake,
  type SessionKeys,
} from '../protocol/handshake.js';
import { HANDSHAKE_TIMEOUT_MS } from '../protocol/limits.js';
import {
  type AuthFailReasonName,
  type ClientHello,
  type ClientMessage,
  type DataHello,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../protocol/messages.js';
import type { FramedConnection } from './framed-connection.js';

/** The client's end of a control or data channel. */
export type ClientConnection = FramedConnection<ServerMessage, ClientMessage>;
/** The server's end of a control or data channel. */
export type ServerConnection = FramedConnection<ClientMessage, ServerMessage>;

class Deadline {
  readonly #at: number;
  constructor(ms: number) {
    this.#at = Date.now() + ms;
  }
  left(): number {
    const left = this.#at - Date.now();
    if (left <= 0) throw new ProtocolError('ERR_HANDSHAKE_TIMEOUT', 'handshake did not finish in time');
    return left;
  }
}

function unexpected(got: string, wanted: string): ProtocolError {
  return new ProtocolError('ERR_UNEXPECTED_MESSAGE', `expected ${wanted}, got ${got}`);
}

/** What a successful client handshake gives. */
export interface ClientHandshakeResult {
  keys: SessionKeys;
  serverKey: Buffer;
  heartbeatMs: number;
}

/** Runs the client's control handshake. Throws AuthRejectedError on AuthFail, ProtocolError otherwise. */
export async function runClientHandshake(
  conn: ClientConnection,
  opts: {
    identity: HandshakeIdentity;
    checkServerKey: (raw: Buffer) => void;
    timeoutMs?: number;
  } & HandshakeFixtures,
): Promise<ClientHandshakeResult> {
  const deadline = new Deadline(opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  const hs = new ClientHandshake(opts);
  conn.send(hs.hello());
  const first = await conn.receive(deadline.left());
  if (first.type === 'AuthFail') throw rejected(first.reason, first.message, first.version);
  if (first.type !== 'ServerHello') throw unexpected(first.type, 'ServerHello');
  const { auth, keys, serverKey } = hs.onServerHello(first);
  conn.encoder.setKeys(keys.send);
  conn.decoder.setKeys(keys.receive);
  conn.send(auth);
  const answer = await conn.receive(deadline.left());
  if (answer.type === 'AuthFail') throw rejected(answer.reason, answer.message, answer.version);
  if (answer.type !== 'AuthOk') throw unexpected(answer.type, 'AuthOk');
  return { keys, serverKey, heartbeatMs: answer.heartbeatMs };
}

function rejected(reason: AuthFailReasonName, message: string, version: number): AuthRejectedError {
  const text =
    reason === 'version_mismatch'
      ? `the server speaks protocol version ${version}, this client speaks ${PROTOCOL_VERSION}; upgrade the older side`
      : `server refused the connection: ${reason}${message ? ` (${message})` : ''}`;
  return new AuthRejectedError(reason, text, version);
}

/** A client handshake that reached ClientAuth; the caller decides (allow-list, busy) and answers. */
export interface PendingServerSession {
  keys: SessionKeys;
  clientKey: Buffer;
  /** Sends AuthOk: the session is established. */
  accept(heartbeatMs: number): void;
  /** Sends AuthFail and closes the connection. */
  reject(reason: AuthFailReasonName, message: string): void;
}

/**
 * Runs the server's control handshake after the first message (a ClientHello) was read. A version
 * mismatch is answered with a cleartext AuthFail naming both versions.
 */
export async function runServerHandshake(
  conn: ServerConnection,
  hello: ClientHello,
  opts: { identity: HandshakeIdentity; timeoutMs?: number } & HandshakeFixtures,
): Promise<PendingServerSession> {
  const deadline = new Deadline(opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  const hs = new ServerHandshake(opts);
  const { hello: serverHello, keys } = hs.onClientHello(hello);
  conn.send(serverHello);
  conn.encoder.setKeys(keys.send);
  conn.decoder.setKeys(keys.receive);
  const auth = await conn.receive(deadline.left());
  if (auth.type !== 'ClientAuth') throw unexpected(auth.type, 'ClientAuth');
  let clientKey: Buffer;
  try {
    ({ clientKey } = hs.onClientAuth(auth));
  } catch (err) {
    failAndClose(conn, 'bad_signature', 'signature over the handshake transcript does not verify');
    throw err;
  }
  return {
    keys,
    clientKey,
    accept: (heartbeatMs) => {
      conn.send({ type: 'AuthOk', heartbeatMs });
    },
    reject: (reason, message) => failAndClose(conn, reason, message),
  };
}

/** Sends AuthFail (in whatever mode the connection is in) and closes after it is flushed. */
export function failAndClose(conn: ServerConnection, reason: AuthFailReasonName, message: string): void {
  if (conn.closed) return;
  try {
    // Cleartext frames are small; a long message is cut rather than refused by the peer.
    conn.send({ type: 'AuthFail', reason, version: PROTOCOL_VERSION, message: message.slice(0, 400) });
  } finally {
    conn.stream.end();
    // A peer that never reads must not keep the socket alive.
    setTimeout(() => conn.close(), 1000).unref();
  }
}

/** Opens a data channel: DataHello, DataHelloAck, then both directions are keyed. */
export async function runDataClientHandshake(
  conn: ClientConnection,
  opts: { sessionId: Buffer; sessionSecret: Buffer; timeoutMs?: number },
): Promise<ChannelKeys> {
  const deadline = new Deadline(opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  const hs = new DataClientHandshake(opts);
  conn.send(hs.hello());
  const ack = await conn.receive(deadline.left());
  if (ack.type === 'AuthFail') throw rejected(ack.reason, ack.message, ack.version);
  if (ack.type !== 'DataHelloAck') throw unexpected(ack.type, 'DataHelloAck');
  const keys = hs.onAck(ack);
  conn.encoder.setKeys(keys.send);
  conn.decoder.setKeys(keys.receive);
  return keys;
}

/** Answers a DataHello for a known session and keys the channel. */
export function runDataServerHandshake(
  conn: ServerConnection,
  hello: DataHello,
  sessionSecret: Buffer,
): ChannelKeys {
  const { ack, keys } = acceptDataHello(hello, sessionSecret);
  conn.send(ack);
  conn.encoder.setKeys(keys.send);
  conn.decoder.setKeys(keys.receive);
  return keys;
}
