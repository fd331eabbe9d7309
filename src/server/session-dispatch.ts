/**
 * Session dispatch: what a connection becomes after its first frame. A ClientHello runs the control
 * handshake and, if the key is allowed, asks the session manager to admit it; a DataHello that names
 * the live session is keyed and handed to that session's channel broker to prove itself. A DataHello
 * for no live session is closed without a word (v2: nothing unauthenticated is said but a version
 * mismatch).
 */
import { type AllowListEntry, fingerprint, type Identity } from '../identity/index.js';
import { isProtocolError, ProtocolError } from '../protocol/errors.js';
import type { ClientHello, ClientMessage, DataHello } from '../protocol/messages.js';
import { runDataServerHandshake, runServerHandshake } from '../transport/handshake.js';
import type { Logger } from '../util/logger.js';
import type { Handshaking } from './acceptor.js';
import type { ControlSessionManager } from './control-session-manager.js';
import type { Metrics } from './metrics.js';

/** What dispatch works with. */
export interface DispatchContext {
  identity: Identity;
  sessions: ControlSessionManager;
  metrics: Metrics;
  /** Refusals a stranger can repeat at will: a rate-limited logger (see Acceptor's `refusalLog`). */
  refusalLog: Logger;
  /** The allow-list as it is now. */
  allowList(): readonly AllowListEntry[];
}

/** Routes a connection by its first frame. */
export function dispatch(ctx: DispatchContext, first: ClientMessage, hs: Handshaking): Promise<void> | void {
  if (first.type === 'ClientHello') return control(ctx, first, hs);
  if (first.type === 'DataHello') return data(ctx, first, hs);
  throw new ProtocolError(
    'ERR_UNEXPECTED_MESSAGE',
    `a connection must start with a hello, not ${first.type}`,
  );
}

async function control(ctx: DispatchContext, hello: ClientHello, hs: Handshaking): Promise<void> {
  let pending: Awaited<ReturnType<typeof runServerHandshake>>;
  try {
    pending = await runServerHandshake(hs.conn, hello, { identity: ctx.identity, timeoutMs: 'caller' });
  } catch (err) {
    if (isProtocolError(err) && err.code === 'ERR_BAD_SIGNATURE')
      ctx.metrics.authFailed('bad_signature', { peer: hs.peer });
    throw err;
  }
  const entry = ctx.allowList().find((e) => e.publicRaw.equals(pending.clientKey));
  if (!entry) {
    hs.release();
    const fp = fingerprint(pending.clientKey);
    ctx.metrics.authFailed('unknown_key', { peer: hs.peer, client: fp });
    ctx.refusalLog.warn('client refused: key not in the allow-list', { peer: hs.peer, client: fp });
    pending.reject(
      'unknown_key',
      `key ${fp} is not in this server's allow-list; ask the admin to run: mtt allow KEY.pub`,
    );
    return;
  }
  // The slot is held while a live session with the same key is probed: the newcomer is still a stranger.
  await ctx.sessions.admit(pending, hs.conn, entry, hs.peer);
  hs.release();
}

function data(ctx: DispatchContext, hello: DataHello, hs: Handshaking): void {
  const session = ctx.sessions.bySessionId(hello.sessionId);
  if (!session) {
    hs.release();
    ctx.refusalLog.debug('data channel for no live session closed', { peer: hs.peer });
    hs.conn.close();
    return;
  }
  runDataServerHandshake(hs.conn, hello, session.sessionSecret);
  // From here the session's broker bounds the channel (its own budget and proof deadline): a burst of
  // visitors opens many channels at once and must not fill the server-wide handshake cap.
  hs.release();
  if (!session.broker.prove(hs.conn, hs.address)) hs.conn.close();
}
