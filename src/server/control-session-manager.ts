/**
 * ControlSessionManager: one client at a time. The same key logging in again replaces its stale
 * session at once; another allowed key is told `busy`; a key removed from the allow-list loses its
 * session.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AllowListEntry } from '../identity/index.js';
import type { PendingServerSession, ServerConnection } from '../transport/handshake.js';
import { ControlSession, type ServerContext } from './control-session.js';

/** Holds the one current session. */
export class ControlSessionManager {
  #current: ControlSession | undefined;
  readonly #ctx: ServerContext;

  constructor(ctx: ServerContext) {
    this.#ctx = ctx;
  }

  /** The current session, if any. */
  get current(): ControlSession | undefined {
    return this.#current;
  }

  /** Admits an authenticated, allowed client, or refuses it with `busy`. */
  admit(
    pending: PendingServerSession,
    conn: ServerConnection,
    entry: AllowListEntry,
  ): ControlSession | undefined {
    const old = this.#current;
    if (old && !old.closed) {
      if (!old.clientKey.equals(entry.publicRaw)) {
        this.#ctx.metrics.authFailed('busy');
        this.#ctx.log.warn('client refused: another client is connected', { client: entry.fingerprint });
        pending.reject(
          'busy',
          `another client (${old.fingerprint}) is connected; this server serves one at a time`,
        );
        return undefined;
      }
      old.close('replaced by a new login with the same key');
    }
    const session = new ControlSession({
      conn,
      keys: pending.keys,
      entry,
      ctx: this.#ctx,
      onClosed: (s) => {
        if (this.#current === s) {
          this.#current = undefined;
          this.#ctx.metrics.clientConnected = 0;
        }
      },
    });
    this.#current = session;
    this.#ctx.metrics.sessionsTotal += 1;
    this.#ctx.metrics.clientConnected = 1;
    pending.accept(this.#ctx.heartbeatMs);
    session.start();
    this.#ctx.log.info('client connected', { client: entry.fingerprint, comment: entry.comment });
    return session;
  }

  /** The live session a DataHello names, compared in constant time. */
  bySessionId(id: Buffer): ControlSession | undefined {
    const s = this.#current;
    if (!s || s.closed || s.sessionId.length !== id.length) return undefined;
    return timingSafeEqual(s.sessionId, id) ? s : undefined;
  }

  /** Applies a reloaded allow-list: a session whose key is gone ends, with its connections. */
  allowListChanged(entries: readonly AllowListEntry[]): void {
    const s = this.#current;
    if (s && !s.closed && !entries.some((e) => e.publicRaw.equals(s.clientKey))) {
      s.close('key removed from the allow-list', { revoke: true });
    }
  }

  /** Ends the current session (server shutdown). */
  closeAll(): void {
    this.#current?.close('server shutting down');
  }
}
