/**
 * What `mtt status` shows: the server, its client session, each tunnel's counts, current rates and
 * effective limits, and the recent refusals. One snapshot is a plain JSON value (ServerStatus); its
 * shape is documented in the README ("Status of a running server") and only grows: a field is never
 * renamed or removed without raising STATUS_FORMAT.
 *
 * Rates need two readings: while the admin socket is open, a one-second sampler keeps the byte
 * counters of the last few seconds, and a snapshot's rate is the change since the oldest of them.
 */

import type { ControlSessionManager } from './control-session-manager.js';
import type { ChannelCounts, Metrics, Refusal } from './metrics.js';

/** The version of the ServerStatus shape. */
export const STATUS_FORMAT = 1;
/** How often the sampler reads the byte counters. */
export const RATE_SAMPLE_MS = 1000;
/** The window a current rate is measured over. */
export const RATE_WINDOW_MS = 5000;

/** A tunnel's state: listening for this session, or a port whose tunnel is gone (its counters remain). */
export type StatusTunnelState = 'open' | 'closed';

/** One public port. */
export interface StatusTunnel {
  name: string;
  port: number;
  state: StatusTunnelState;
  connections: { open: number; total: number };
  /** Bytes since the server started: `in` from visitors towards the client, `out` back to them. */
  bytes: { in: number; out: number };
  /** Bytes per second over the last few seconds (RATE_WINDOW_MS). */
  rate: { in: number; out: number };
  /** The effective limits of the open tunnel (0 = none; 0 when closed). */
  limits: { maxConnections: number; rateLimit: number };
  /** Whether the tunnel's own permitFrom narrows who may connect. */
  permitFrom: boolean;
  /** Visitors closed at accept, by reason. */
  refused: { not_permitted: number; max_connections: number };
  /** Visitors closed before a data channel served them. */
  pairingFailures: number;
  /** Seconds readers of the tunnel spent paused by its rate limit, each way. */
  rateLimitedSeconds: { in: number; out: number };
}

/** One recent refusal. */
export interface StatusRefusal {
  /** ISO 8601 time of the last one. */
  at: string;
  kind: Refusal['kind'];
  reason: string;
  /** "host:port" of the visitor or client, when known. */
  peer: string | null;
  tunnel: string | null;
  port: number | null;
  /** The client key's fingerprint, when known. */
  client: string | null;
  /** Refusals in a row folded into this one (same kind, reason, tunnel and source address). */
  count: number;
}

/** The client session. */
export interface StatusSession {
  fingerprint: string;
  /** The key's comment in the allow-list, unescaped (JSON escapes it; the text view escapes it). */
  comment: string;
  /** "host:port" of the client's control channel. */
  peer: string;
  /** ISO 8601. */
  since: string;
  /** The session's data channels by state, and visitors waiting for one. */
  channels: ChannelCounts | null;
}

/** Everything `mtt status --json` prints. */
export interface ServerStatus {
  format: typeof STATUS_FORMAT;
  /** ISO 8601 time of this snapshot. */
  now: string;
  server: {
    pid: number;
    /** The control listener, "host:port". */
    control: string;
    fingerprint: string;
    /** ISO 8601. */
    startedAt: string;
    /** Keys in the allow-list now. */
    allowedKeys: number;
  };
  /** The client session, or null when no client is connected. */
  session: StatusSession | null;
  /** Every public port a tunnel was opened on since the server started, open ones first, by port. */
  tunnels: StatusTunnel[];
  /** Oldest first; at most MAX_RECENT_REFUSALS. */
  recentRefusals: StatusRefusal[];
}

/** What the snapshot reads. */
export interface StatusSourceOptions {
  metrics: Metrics;
  sessions: ControlSessionManager;
  control: string;
  fingerprint: string;
  allowedKeys(): number;
  now?: () => number;
}

interface Sample {
  at: number;
  bytes: Map<number, { in: number; out: number }>;
}

/** Builds ServerStatus snapshots; start() runs the rate sampler, close() stops it. */
export class StatusSource {
  readonly #o: StatusSourceOptions;
  readonly #startedAt: number;
  readonly #samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: StatusSourceOptions) {
    this.#o = opts;
    this.#startedAt = this.#now();
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /** Starts sampling the byte counters (an unref'd timer: it never keeps the process alive). */
  start(): void {
    if (this.#timer) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), RATE_SAMPLE_MS);
    this.#timer.unref();
  }

  /** Reads the byte counters once (the timer calls it; tests may too). */
  sample(): void {
    const bytes = new Map<number, { in: number; out: number }>();
    for (const t of this.#o.metrics.tunnels.values()) bytes.set(t.port, { in: t.bytesIn, out: t.bytesOut });
    const at = this.#now();
    this.#samples.push({ at, bytes });
    // Keep one reading older than the window, so a rate always spans the whole window once it can.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= at - RATE_WINDOW_MS) this.#samples.shift();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The status now. */
  snapshot(): ServerStatus {
    const { metrics, sessions } = this.#o;
    const now = this.#now();
    const s = sessions.current && !sessions.current.closed ? sessions.current : undefined;
    const open = new Map((s?.tunnels() ?? []).map((t) => [t.port, t]));
    const base = this.#samples.find((x) => x.at >= now - RATE_WINDOW_MS - RATE_SAMPLE_MS / 2);
    const seconds = base ? (now - base.at) / 1000 : 0;
    const rate = (port: number, dir: 'in' | 'out', current: number) => {
      const before = base?.bytes.get(port)?.[dir] ?? 0;
      return seconds > 0 ? Math.max(0, Math.round((current - before) / seconds)) : 0;
    };
    const tunnels: StatusTunnel[] = [...metrics.tunnels.values()].map((c) => {
      const t = open.get(c.port);
      return {
        name: t?.name ?? c.name,
        port: c.port,
        state: t ? 'open' : 'closed',
        connections: { open: c.activeConnections, total: c.totalConnections },
        bytes: { in: c.bytesIn, out: c.bytesOut },
        rate: { in: rate(c.port, 'in', c.bytesIn), out: rate(c.port, 'out', c.bytesOut) },
        limits: t
          ? { maxConnections: t.maxConnections, rateLimit: t.rateLimit }
          : { maxConnections: 0, rateLimit: 0 },
        permitFrom: t?.permitFrom ?? false,
        refused: { ...c.refused },
        pairingFailures: c.pairingFailures,
        rateLimitedSeconds: { in: c.rateLimitedMs.in / 1000, out: c.rateLimitedMs.out / 1000 },
      };
    });
    tunnels.sort((a, b) => (a.state === b.state ? a.port - b.port : a.state === 'open' ? -1 : 1));
    return {
      format: STATUS_FORMAT,
      now: new Date(now).toISOString(),
      server: {
        pid: process.pid,
        control: this.#o.control,
        fingerprint: this.#o.fingerprint,
        startedAt: new Date(this.#startedAt).toISOString(),
        allowedKeys: this.#o.allowedKeys(),
      },
      session: s
        ? {
            fingerprint: s.fingerprint,
            comment: s.comment,
            peer: s.peer,
            since: new Date(s.since).toISOString(),
            channels: s.broker.stats(),
          }
        : null,
      tunnels,
      recentRefusals: metrics.recentRefusals.map((r) => ({
        at: new Date(r.at).toISOString(),
        kind: r.kind,
        reason: r.reason,
        peer: r.peer ?? null,
        tunnel: r.tunnel ?? null,
        port: r.port ?? null,
        client: r.client ?? null,
        count: r.count,
      })),
    };
  }
}
