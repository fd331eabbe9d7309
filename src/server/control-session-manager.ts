/**
 * ControlSessionManager: one client at a time. Another allowed key is told `busy`. The same key
 * logging in again is checked against the session it would replace: a session that answers a short
 * probe is live and keeps the key (the newcomer is told `in_use`, with where and since when); one that
 * does not is stale and is replaced at once. Revocation is by key: an allow-list change ends what the
 * new list no longer allows, in the current session and in the relayed connections of earlier ones.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AllowListEntry } from '../identity/index.js';
import { PROBE_TIMEOUT_MS } from '../protocol/limits.js';
import type { PendingServerSession, ServerConnection } from '../transport/handshake.js';
import type { BrokerTunnel } from './channel-broker.js';
import { ControlSession, type ServerContext } from './control-session.js';
import { rangesWithin } from './port-ranges.js';
import { visitorPermitted } from './visitor-filter.js';

/** Holds the one current session, and earlier ones while their connections are still relayed. */
export class ControlSessionManager {
  #current: ControlSession | undefined;
  /** Every session whose channels may still carry bytes: the current one and draining ones. */
  readonly #sessions = new Set<ControlSession>();
  /** Admissions run one at a time: a probe of the old session must not race a second newcomer. */
  #admitting: Promise<unknown> = Promise.resolve();
  readonly #ctx: ServerContext;
  readonly #duplicateProbeMs: number;

  constructor(ctx: ServerContext, opts: { duplicateProbeMs?: number } = {}) {
    this.#ctx = ctx;
    this.#duplicateProbeMs = opts.duplicateProbeMs ?? PROBE_TIMEOUT_MS;
  }

  /** The current session, if any. */
  get current(): ControlSession | undefined {
    return this.#current;
  }

  /** Sessions still tracked (the current one, and ended ones whose connections are still relayed). */
  get tracked(): number {
    return this.#sessions.size;
  }

  /** Admits an authenticated, allowed client, or refuses it (`busy`, `in_use`). */
  admit(
    pending: PendingServerSession,
    conn: ServerConnection,
    entry: AllowListEntry,
    peer: string,
  ): Promise<ControlSession | undefined> {
    const run = this.#admitting.then(() => this.#admit(pending, conn, entry, peer));
    this.#admitting = run.catch(() => {});
    return run;
  }

  async #admit(
    pending: PendingServerSession,
    conn: ServerConnection,
    entry: AllowListEntry,
    peer: string,
  ): Promise<ControlSession | undefined> {
    const { metrics } = this.#ctx;
    const log = this.#ctx.refusalLog ?? this.#ctx.log;
    const old = this.#current;
    if (old && !old.closed) {
      if (!old.clientKey.equals(entry.publicRaw)) {
        metrics.authFailed('busy', { peer, client: entry.fingerprint });
        log.warn('client refused: another client is connected', { client: entry.fingerprint, peer });
        pending.reject(
          'busy',
          `another client (${old.fingerprint}) is connected; this server serves one at a time`,
        );
        return undefined;
      }
      const alive = await old.probe(this.#duplicateProbeMs);
      if (conn.closed) return undefined;
      if (alive && !old.closed) {
        const since = new Date(old.since).toISOString();
        metrics.authFailed('in_use', { peer, client: entry.fingerprint });
        log.warn('client refused: its key is in use by a live session', {
          client: entry.fingerprint,
          peer,
          livePeer: old.peer,
          since,
        });
        pending.reject('in_use', `this key is in use by a live session from ${old.peer} since ${since}`);
        return undefined;
      }
      old.close('replaced by a new login with the same key (the old session did not answer)');
    }
    const session = new ControlSession({
      conn,
      keys: pending.keys,
      entry,
      ctx: this.#ctx,
      peer,
      onClosed: (s) => {
        if (this.#current === s) {
          this.#current = undefined;
          metrics.clientConnected = 0;
        }
        // Its relayed connections may outlive it; forget it when the last one ends.
        s.broker.onDrained(() => this.#sessions.delete(s));
      },
    });
    this.#current = session;
    this.#sessions.add(session);
    metrics.sessionsTotal += 1;
    metrics.clientConnected = 1;
    pending.accept(session.grant());
    session.start();
    this.#ctx.log.info('client connected', { client: entry.fingerprint, comment: entry.comment, peer });
    return session;
  }

  /** The live session a DataHello names, compared in constant time. */
  bySessionId(id: Buffer): ControlSession | undefined {
    const s = this.#current;
    if (!s || s.closed || s.sessionId.length !== id.length) return undefined;
    return timingSafeEqual(s.sessionId, id) ? s : undefined;
  }

  /**
   * Applies a reloaded allow-list, by key: a key that is gone loses its session and every relayed
   * connection of any of its sessions; a key whose permitlisten narrowed loses the tunnels outside
   * it and their connections.
   */
  allowListChanged(entries: readonly AllowListEntry[]): void {
    for (const s of [...this.#sessions]) {
      const entry = entries.find((e) => e.publicRaw.equals(s.clientKey));
      if (!entry) {
        if (!s.closed) s.close('key removed from the allow-list', { revoke: true });
        else s.broker.revoke('key removed from the allow-list');
        continue;
      }
      const allowed = entry.options.permitListen;
      const from = entry.options.permitFrom;
      const ports = s.closed ? new Set<number>() : s.narrow(allowed, from, entry);
      for (const p of s.broker.activePorts()) {
        if (!rangesWithin([{ low: p, high: p }], allowed)) ports.add(p);
      }
      if (ports.size > 0) s.broker.revoke('port no longer allowed for this key', ports);
      // permitfrom narrowed: visitors it no longer allows lose their connections, waiting or relayed.
      const outside = (t: BrokerTunnel, visitor: string | undefined) =>
        !visitorPermitted(visitor, from, t.permitFrom);
      s.broker.refuseWaiting('visitor address no longer allowed for this key', outside);
      s.broker.revoke('visitor address no longer allowed for this key', outside);
    }
  }

  /** Ends every session and its connections (server shutdown). */
  closeAll(): void {
    for (const s of [...this.#sessions]) {
      if (!s.closed) s.close('server shutting down');
      s.broker.revoke('server shutting down');
    }
  }
}
