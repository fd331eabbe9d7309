/**
 * Server metrics: per-tunnel connection and byte counters, kept across client sessions (keyed by the
 * public port) so counters only ever grow, plus the session and refusal counts. The hot path bumps
 * plain numbers; prom-client reads them when Prometheus scrapes (prometheus()), so a server without a
 * metrics listener never loads it. Names and labels are stable: the README lists them.
 */
import { frameErrorCounts } from '../transport/frame-errors.js';
import {
  exposition,
  loadPromClient,
  type PromClient,
  type PromRegistry,
  type Readiness,
  registerFrameErrors,
} from '../util/prometheus.js';

/** Why a visitor was closed at accept, before anything reached the client. */
export type VisitorRefusal = 'not_permitted' | 'max_connections';

/** Counters of one public port. */
export interface TunnelCounters {
  name: string;
  port: number;
  activeConnections: number;
  totalConnections: number;
  /** Bytes from external peers towards the client's local service. */
  bytesIn: number;
  /** Bytes from the local service back to external peers. */
  bytesOut: number;
  /** External connections closed because no data channel came in time (or the cap was hit). */
  pairingFailures: number;
  /** Visitors closed at accept, by reason. */
  refused: Record<VisitorRefusal, number>;
  /** The effective limits of the tunnel open on this port now (0 = none, or not open). */
  limits: { maxConnections: number; rateLimit: number };
  /** Milliseconds readers of this tunnel spent paused by its rate limit, by direction. */
  rateLimitedMs: { in: number; out: number };
}

/** One refusal, for `mtt status`'s recent list. */
export interface Refusal {
  /** Epoch ms of the last one (see `count`). */
  at: number;
  /** A visitor closed at accept, a client login refused, or a tunnel the server would not open. */
  kind: 'visitor' | 'login' | 'tunnel';
  reason: string;
  /** "host:port" of the visitor or client (the last one, when `count` > 1). */
  peer?: string;
  tunnel?: string;
  port?: number;
  /** The client key's fingerprint, when known. */
  client?: string;
  /** Refusals in a row with the same kind, reason, tunnel and source address, folded into this one. */
  count: number;
}

/** What a caller tells of one refusal. */
export type RefusalDetail = Omit<Refusal, 'at' | 'kind' | 'count'>;

/** Refusals kept for `mtt status` (a ring: the oldest goes first). */
export const MAX_RECENT_REFUSALS = 50;

/** What the broker counts of the current session's data channels. */
export interface ChannelCounts {
  waiting: number;
  proving: number;
  idle: number;
  active: number;
}

/** All of the server's counters. */
export class Metrics {
  readonly tunnels = new Map<number, TunnelCounters>();
  readonly authFailures = new Map<string, number>();
  sessionsTotal = 0;
  clientConnected = 0;
  /** The current session's data channels (set by the server). */
  channels: () => ChannelCounts | undefined = () => undefined;
  /** The server's readiness (set by the server; GET /readyz). */
  readiness: () => Readiness = () => ({ ready: false, checks: { listening: false } });
  /** The last refusals, oldest first, at most MAX_RECENT_REFUSALS. */
  readonly recentRefusals: Refusal[] = [];
  #registry: Promise<PromRegistry> | undefined;

  /** Records a visitor closed at accept (the per-tunnel counter is the caller's). */
  visitorRefused(r: RefusalDetail): void {
    this.#remember('visitor', r);
  }

  /** Records a tunnel the server refused to open. */
  tunnelRefused(r: RefusalDetail): void {
    this.#remember('tunnel', r);
  }

  #remember(kind: Refusal['kind'], r: RefusalDetail): void {
    const last = this.recentRefusals.at(-1);
    // A flood from one address is one line with a count, so it cannot push everything else out.
    if (
      last &&
      last.kind === kind &&
      last.reason === r.reason &&
      last.port === r.port &&
      last.tunnel === r.tunnel &&
      last.client === r.client &&
      hostOf(last.peer) === hostOf(r.peer)
    ) {
      last.count += 1;
      last.at = Date.now();
      if (r.peer !== undefined) last.peer = r.peer;
      return;
    }
    this.recentRefusals.push({ at: Date.now(), kind, ...r, count: 1 });
    if (this.recentRefusals.length > MAX_RECENT_REFUSALS) this.recentRefusals.shift();
  }

  /** The counters for a public port, created on first use. */
  tunnel(port: number, name: string): TunnelCounters {
    let t = this.tunnels.get(port);
    if (!t) {
      t = {
        name,
        port,
        activeConnections: 0,
        totalConnections: 0,
        bytesIn: 0,
        bytesOut: 0,
        pairingFailures: 0,
        refused: { not_permitted: 0, max_connections: 0 },
        limits: { maxConnections: 0, rateLimit: 0 },
        rateLimitedMs: { in: 0, out: 0 },
      };
      this.tunnels.set(port, t);
    }
    t.name = name;
    return t;
  }

  /** Counts a refused client handshake; with `who`, it is also one of the recent refusals. */
  authFailed(reason: string, who?: { peer: string; client?: string }): void {
    this.authFailures.set(reason, (this.authFailures.get(reason) ?? 0) + 1);
    if (who) this.#remember('login', { reason, ...who });
  }

  /** Prometheus text exposition format 0.0.4: these metrics, then the process and runtime ones. */
  async prometheus(): Promise<string> {
    this.#registry ??= loadPromClient().then((pc) => this.#build(pc));
    return exposition(await this.#registry);
  }

  #build(pc: PromClient): PromRegistry {
    const m = this;
    const registers = [new pc.Registry()];
    const tl = ['tunnel', 'port'] as const;
    const lbl = (t: TunnelCounters) => ({ tunnel: t.name, port: String(t.port) });
    const all = () => [...m.tunnels.values()];
    new pc.Gauge({
      name: 'mtt_client_connected',
      help: 'Whether a client session is established (0 or 1).',
      registers,
      collect() {
        this.set(m.clientConnected);
      },
    });
    new pc.Counter({
      name: 'mtt_sessions_total',
      help: 'Client sessions established.',
      registers,
      collect() {
        this.reset();
        this.inc(m.sessionsTotal);
      },
    });
    new pc.Counter({
      name: 'mtt_auth_failures_total',
      help: 'Refused client handshakes, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of m.authFailures) this.inc({ reason }, n);
      },
    });
    registerFrameErrors(pc, registers, frameErrorCounts);
    new pc.Gauge({
      name: 'mtt_data_channels',
      help: "The current session's data channels by state, and visitors waiting for one.",
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const c = m.channels();
        if (!c) return;
        for (const [state, n] of Object.entries(c)) this.set({ state }, n);
      },
    });
    // One sample per tunnel (gauge, counter), or two, by direction (in: towards the client). A
    // metric is reset before each reading, so inc() sets a gauge as it counts a counter.
    type Labelled = { reset(): void; inc(labels: ReturnType<typeof lbl>, value: number): void };
    const perTunnel = (value: (t: TunnelCounters) => number) =>
      function (this: Labelled) {
        this.reset();
        for (const t of all()) this.inc(lbl(t), value(t));
      };
    const gauge = (name: string, help: string, value: (t: TunnelCounters) => number) =>
      new pc.Gauge({ name, help, labelNames: tl, registers, collect: perTunnel(value) });
    const counter = (name: string, help: string, value: (t: TunnelCounters) => number) =>
      new pc.Counter({ name, help, labelNames: tl, registers, collect: perTunnel(value) });
    const byDirection = (
      name: string,
      help: string,
      value: (t: TunnelCounters) => { in: number; out: number },
    ) =>
      new pc.Counter({
        name,
        help,
        labelNames: [...tl, 'direction'],
        registers,
        collect() {
          this.reset();
          for (const t of all()) {
            const v = value(t);
            this.inc({ ...lbl(t), direction: 'in' }, v.in);
            this.inc({ ...lbl(t), direction: 'out' }, v.out);
          }
        },
      });
    gauge('mtt_tunnel_connections_active', 'Tunneled connections open now.', (t) => t.activeConnections);
    counter('mtt_tunnel_connections_total', 'Tunneled connections accepted.', (t) => t.totalConnections);
    byDirection('mtt_tunnel_bytes_total', 'Bytes carried, by direction (in: towards the client).', (t) => ({
      in: t.bytesIn,
      out: t.bytesOut,
    }));
    counter(
      'mtt_tunnel_pairing_failures_total',
      'External connections closed before a data channel arrived.',
      (t) => t.pairingFailures,
    );
    new pc.Counter({
      name: 'mtt_tunnel_visitors_refused_total',
      help: 'Visitors closed at accept, before any frame reached the client, by reason.',
      labelNames: [...tl, 'reason'],
      registers,
      collect() {
        this.reset();
        for (const t of all())
          for (const [reason, n] of Object.entries(t.refused)) this.inc({ ...lbl(t), reason }, n);
      },
    });
    gauge(
      'mtt_tunnel_limit_max_connections',
      'Effective connection limit of the tunnel open on this port (0 = none).',
      (t) => t.limits.maxConnections,
    );
    gauge(
      'mtt_tunnel_limit_rate_bytes',
      'Effective rate limit of the tunnel open on this port, bytes per second each way (0 = none).',
      (t) => t.limits.rateLimit,
    );
    byDirection(
      'mtt_tunnel_rate_limited_seconds_total',
      'Time readers of the tunnel spent paused by its rate limit, by direction.',
      (t) => ({ in: t.rateLimitedMs.in / 1000, out: t.rateLimitedMs.out / 1000 }),
    );
    return registers[0]!;
  }
}

/** "203.0.113.7" of "203.0.113.7:5000" or "[::1]:5000"-style peers (undefined stays undefined). */
function hostOf(peer: string | undefined): string | undefined {
  if (peer === undefined) return undefined;
  const colon = peer.lastIndexOf(':');
  return colon < 0 ? peer : peer.slice(0, colon);
}
