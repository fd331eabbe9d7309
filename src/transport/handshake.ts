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
} from '../protocol/handshake-machines.js';
import { HANDSHAKE_TIMEOUT_MS } from '../protocol/limits.js';
import {
  type AuthFail,
  type AuthFailReasonName,
  type AuthOk,
  type ClientHello,
  type ClientMessage,
  type DataHello,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../protocol/messages.js';
import { escapeControls } from '../util/escape.js';
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
  /** The server's AuthOk: heartbeat interval, the ports and ceilings of this key. */
  authOk: AuthOk;
}

/** What the server grants a session in AuthOk. */
export type SessionGrant = Omit<AuthOk, 'type'>;

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
  if (first.type === 'AuthFail') throw cleartextRefusal(first);
  if (first.type !== 'ServerHello') throw unexpected(first.type, 'ServerHello');
  const { auth, keys, serverKey } = hs.onServerHello(first);
  conn.encoder.setKeys(keys.send);
  conn.decoder.setKeys(keys.receive);
  conn.send(auth);
  const answer = await conn.receive(deadline.left());
  if (answer.type === 'AuthFail') throw rejected(answer.reason, answer.message, answer.version);
  if (answer.type !== 'AuthOk') throw unexpected(answer.type, 'AuthOk');
  return { keys, serverKey, authOk: answer };
}

/**
 * A refusal in clear, before the server proved its key: anyone on the path could have sent it. Only
 * a version mismatch is believed (keys cannot exist across versions), and even then its text is not
 * shown: the message is built here from the version number.
 */
function cleartextRefusal(fail: AuthFail): ProtocolError {
  if (fail.reason === 'version_mismatch') {
    return new AuthRejectedError(
      'version_mismatch',
      `the server speaks protocol version ${fail.version}, this client speaks ${PROTOCOL_VERSION}; upgrade the older side`,
      fail.version,
    );
  }
  return new ProtocolError(
    'ERR_UNEXPECTED_MESSAGE',
    `the server sent an unauthenticated refusal (${fail.reason}) before proving its key; ignored`,
  );
}

/** A refusal after the server proved its key; its text is the peer's, so it is shown escaped. */
function rejected(reason: AuthFailReasonName, message: string, version: number): AuthRejectedError {
  const text = `server refused the connection: ${reason}${message ? ` (${escapeControls(message)})` : ''}`;
  return new AuthRejectedError(reason, text, version);
}

/** A client handshake that reached ClientAuth; the caller decides (allow-list, busy) and answers. */
export interface PendingServerSession {
  keys: SessionKeys;
  clientKey: Buffer;
  /** Sends AuthOk: the session is established. */
  accept(grant: SessionGrant): void;
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
  opts: { identity: HandshakeIdentity; timeoutMs?: number | 'caller' } & HandshakeFixtures,
): Promise<PendingServerSession> {
  // 'caller': the caller holds the connection to one deadline of its own (the server's acceptor).
  const deadline =
    opts.timeoutMs === 'caller' ? undefined : new Deadline(opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  const hs = new ServerHandshake(opts);
  const { hello: serverHello, keys } = hs.onClientHello(hello);
  conn.send(serverHello);
  conn.encoder.setKeys(keys.send);
  conn.decoder.setKeys(keys.receive);
  const auth = await conn.receive(deadline?.left());
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
    accept: (grant) => {
      conn.send({ type: 'AuthOk', ...grant });
    },
    reject: (reason, message) => failAndClose(conn, reason, message),
  };
}

/**
 * Sends AuthFail and ends the connection once it is flushed. Only a version mismatch goes out in
 * clear (before keys exist); every other refusal is sent after the server proved its key.
 */
export function failAndClose(conn: ServerConnection, reason: AuthFailReasonName, message: string): void {
  if (conn.closed) return;
  try {
    // Cleartext frames are small; a long message is cut rather than refused by the peer.
    conn.send({ type: 'AuthFail', reason, version: PROTOCOL_VERSION, message: message.slice(0, 400) });
  } finally {
    conn.end();
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
  if (ack.type === 'AuthFail') throw cleartextRefusal(ack);
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
