/**
 * StateStore: the client's observable state. Structural changes (connection, tunnel status) emit
 * 'change' at once; counters (bytes, connections) are batched to at most one 'change' per interval,
 * so a busy tunnel cannot flood the dashboard.
 */
import { EventEmitter } from 'node:events';
import type {
  ClientEvent,
  ClientSnapshot,
  ConnectionState,
  StateStoreLike,
  TunnelEntry,
  TunnelView,
} from './api.js';

/** Most events kept. */
export const MAX_EVENTS = 200;
/** Counter changes are published at most this often. */
const COUNTER_FLUSH_MS = 250;

/** Counters and status of one tunnel, mutated in place by the proxy. */
export type TunnelRuntime = Omit<TunnelView, keyof TunnelEntry | 'local' | 'recent'> &
  Required<Pick<TunnelView, 'local' | 'recent'>>;

/** The client's state. */
export class StateStore extends EventEmitter implements StateStoreLike {
  #connection: ConnectionState = { kind: 'connecting', attempt: 0 };
  #paused = false;
  #events: ClientEvent[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #identity: ClientSnapshot['identity'];
  readonly #server: ClientSnapshot['server'];
  readonly #tunnels: () => TunnelView[];

  constructor(opts: {
    identity: ClientSnapshot['identity'];
    serverAddress: string;
    tunnels: () => TunnelView[];
  }) {
    super();
    this.#identity = opts.identity;
    this.#server = { address: opts.serverAddress };
    this.#tunnels = opts.tunnels;
  }

  get connection(): ConnectionState {
    return this.#connection;
  }

  get paused(): boolean {
    return this.#paused;
  }

  snapshot(): ClientSnapshot {
    return {
      connection: { ...this.#connection },
      paused: this.#paused,
      server: {
        ...this.#server,
        ...(this.#server.allowedPorts
          ? { allowedPorts: this.#server.allowedPorts.map((r) => ({ ...r })) }
          : {}),
        ...(this.#server.limits ? { limits: { ...this.#server.limits } } : {}),
      },
      identity: { ...this.#identity },
      tunnels: this.#tunnels().map((t) => ({
        ...t,
        local: { ...(t.local ?? { state: 'unknown' }) },
        recent: (t.recent ?? []).map((r) => ({ ...r })),
        ...(t.effective ? { effective: { ...t.effective } } : {}),
      })),
      events: [...this.#events],
    };
  }

  setPaused(paused: boolean): void {
    this.#paused = paused;
    this.changed();
  }

  /** What the server granted this key (AuthOk). */
  setGrant(grant: Pick<ClientSnapshot['server'], 'allowedPorts' | 'limits'>): void {
    this.#server.allowedPorts = grant.allowedPorts;
    this.#server.limits = grant.limits;
    this.changed();
  }

  /** The server's address changed (updateSettings). */
  setServerAddress(address: string): void {
    this.#server.address = address;
    delete this.#server.fingerprint;
    delete this.#server.allowedPorts;
    delete this.#server.limits;
    this.changed();
  }

  setConnection(state: ConnectionState): void {
    this.#connection = state;
    if (state.kind === 'connected') this.#server.fingerprint = state.serverFingerprint;
    this.changed();
  }

  event(level: ClientEvent['level'], message: string, tunnel?: string): void {
    this.#events.push({ at: Date.now(), level, message, ...(tunnel ? { tunnel } : {}) });
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
    this.changed();
  }

  /** Something structural changed: tell listeners now. */
  changed(): void {
    if (this.#flushTimer) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    this.emit('change');
  }

  /** A counter changed: tell listeners soon. */
  countersChanged(): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.emit('change');
    }, COUNTER_FLUSH_MS);
    this.#flushTimer.unref();
  }
}
