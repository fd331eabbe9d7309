/**
 * The client's side of the tunnel messages on a live control channel: OpenTunnel and CloseTunnel for
 * each tunnel the TunnelManager holds, and what a TunnelStatus answer does to that tunnel — active,
 * refused (retried with backoff when the reason can heal) or closed by the server.
 */
import { parseCidr } from '../config/host-port.js';
import { parseRate } from '../config/rate.js';
import type { AddressBlock, OpenTunnel, TunnelReasonName, TunnelStatus } from '../protocol/messages.js';
import type { ClientConnection } from '../transport/handshake.js';
import { escapeControls } from '../util/escape.js';
import type { Logger } from '../util/logger.js';
import { backoff } from './reconnect.js';
import type { StateStore } from './state-store.js';
import type { ManagedTunnel, TunnelManager } from './tunnel-manager.js';

/** First wait before retrying a refused tunnel; doubles up to the reconnect maximum. */
export const TUNNEL_RETRY_MIN_MS = 1_000;

/** Tunnel refusals that can heal by themselves or by an admin's change, so they are retried. */
const HEALABLE: ReadonlySet<TunnelReasonName> = new Set<TunnelReasonName>([
  'port_in_use',
  'bind_failed',
  'port_not_allowed',
  'too_many_tunnels',
  'revoked',
]);

/** What TunnelRequests reads from the client's (changing) settings. */
export interface TunnelRequestsOptions {
  tunnels: TunnelManager;
  state: StateStore;
  /** The server's host, for a public address the server gives as ":port". */
  readonly host: string;
  readonly reconnectMaxMs: number;
}

/** Opens, closes and retries tunnels over whichever control channel is live. */
export class TunnelRequests {
  readonly #o: TunnelRequestsOptions;
  readonly #live: () => ClientConnection | undefined;

  /** `live` gives the current control channel, or undefined between sessions. */
  constructor(o: TunnelRequestsOptions, live: () => ClientConnection | undefined) {
    this.#o = o;
    this.#live = live;
  }

  /** Sends OpenTunnel for `t` if it is enabled, not paused and a session is up. */
  open(t: ManagedTunnel): void {
    this.cancelRetry(t);
    if (!t.config.enabled || this.#o.state.paused) {
      t.runtime.status = 'disabled';
      return;
    }
    t.runtime.status = 'opening';
    // Until this open's TunnelStatus grants it again.
    t.zstd = false;
    const conn = this.#live();
    if (!conn || conn.closed) return;
    conn.send(openTunnelMessage(t));
  }

  /** Sends CloseTunnel for `t` if a session is up. */
  close(t: ManagedTunnel): void {
    this.cancelRetry(t);
    const conn = this.#live();
    if (!conn || conn.closed) return;
    conn.send({ type: 'CloseTunnel', tunnelId: t.tunnelId });
  }

  /** Applies the server's answer about one tunnel. */
  status(msg: TunnelStatus, log: Logger): void {
    const o = this.#o;
    const t = o.tunnels.byId(msg.tunnelId);
    if (!t) return;
    const name = t.config.name;
    const r = t.runtime;
    if (msg.state === 'active') {
      const address = msg.address.startsWith(':') ? `${o.host}${msg.address}` : msg.address;
      r.status = 'active';
      r.publicAddress = address;
      r.effective = { maxConnections: msg.maxConnections, rateLimit: msg.rateLimit };
      t.zstd = t.config.compress === 'zstd' && msg.zstd;
      if (t.config.compress === 'zstd' && !msg.zstd && !t.warnedNoZstd) {
        t.warnedNoZstd = true;
        const why = 'the server cannot use zstd (it needs Node.js 22.15 or later); this tunnel uses LZ4';
        log.warn(why, { tunnel: name });
        o.state.event('warn', why, name);
      }
      delete r.error;
      delete r.errorReason;
      delete r.nextRetryAt;
      t.retry = { attempt: 0 };
      log.info('tunnel active', {
        tunnel: name,
        public: address,
        target: `${t.config.localHost}:${t.config.localPort}`,
      });
      o.state.event('info', `tunnel open: ${address} -> ${t.config.localHost}:${t.config.localPort}`, name);
    } else if (msg.state === 'refused' || (msg.state === 'closed' && msg.reason === 'revoked')) {
      const text = escapeControls(msg.message) || msg.reason;
      r.status = 'error';
      r.error = text;
      r.errorReason = msg.reason;
      delete r.effective;
      t.zstd = false;
      const verb = msg.state === 'refused' ? 'refused' : 'closed';
      if (HEALABLE.has(msg.reason)) this.#scheduleRetry(t);
      else delete r.nextRetryAt;
      log.error(`tunnel ${verb} by the server`, {
        tunnel: name,
        reason: msg.reason,
        message: text,
        retryInMs: r.nextRetryAt !== undefined ? r.nextRetryAt - Date.now() : undefined,
      });
      o.state.event('error', `tunnel ${verb}: ${text}`, name);
    } else {
      return;
    }
    o.state.changed();
  }

  /** Drops a tunnel's pending retry. */
  cancelRetry(t: ManagedTunnel): void {
    if (t.retry.timer) clearTimeout(t.retry.timer);
    t.retry.timer = undefined;
    delete t.runtime.nextRetryAt;
  }

  #scheduleRetry(t: ManagedTunnel): void {
    this.cancelRetry(t);
    t.retry.attempt += 1;
    const max = Math.max(TUNNEL_RETRY_MIN_MS, this.#o.reconnectMaxMs);
    const delay = backoff(t.retry.attempt, TUNNEL_RETRY_MIN_MS, max);
    t.runtime.nextRetryAt = Date.now() + delay;
    t.retry.timer = setTimeout(() => {
      t.retry.timer = undefined;
      if (!t.config.enabled || t.runtime.status !== 'error' || !this.#live() || this.#o.state.paused) return;
      this.#o.tunnels.nextId(t);
      this.open(t);
      this.#o.state.changed();
    }, delay);
    t.retry.timer.unref();
  }
}

/** The OpenTunnel message for a tunnel's config. */
function openTunnelMessage(t: ManagedTunnel): OpenTunnel {
  const c = t.config;
  return {
    type: 'OpenTunnel',
    tunnelId: t.tunnelId,
    remotePort: c.remotePort,
    name: c.name,
    compress: c.compress,
    maxConnections: c.maxConnections ?? 0,
    rateLimit: c.rateLimit ? Math.min(0xffff_ffff, parseRate(c.rateLimit)) : 0,
    permitFrom: (c.permitFrom ?? []).flatMap((text): AddressBlock[] => {
      // The schema validated every entry; one that does not parse is left out (it would allow nothing).
      const b = parseCidr(text.trim());
      return typeof b === 'string'
        ? []
        : [{ family: b.family, prefix: b.prefix, address: Buffer.from(b.bytes) }];
    }),
  };
}
