/**
 * The client's public, observable surface: what the CLI, the GUI and tests read and change.
 * The GUI talks to a running client only through these types (StateStore + TunnelManager).
 */
import type { EventEmitter } from 'node:events';

import type { TunnelConfig, TunnelEntry } from '../config/client-config.js';

/** One tunnel as written in the config file (input) and after validation (defaults applied). */
export type { TunnelConfig, TunnelEntry } from '../config/client-config.js';

/** The control channel's state, as a user would describe it. */
export type ConnectionState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; serverFingerprint: string; since: number }
  | { kind: 'reconnecting'; attempt: number; nextTryAt: number; lastError: string }
  | {
      kind: 'rejected';
      /**
       * AuthFail reason name from the wire, e.g. 'unknown_key', 'busy', 'in_use' (the key is held by
       * a live session; the message says from where and since when), or 'server_key_mismatch'.
       */
      reason: string;
      message: string;
      /** When the client retries; absent when it has given up (exit-on-failure). */
      nextTryAt?: number;
    }
  | { kind: 'stopped' };

/** A tunnel's life: 'opening' until the server answers, then 'active' or 'error'. */
export type TunnelStatusKind = 'active' | 'opening' | 'error' | 'disabled';

/** One tunneled connection, for the dashboard's recent list. */
export interface RecentConnection {
  /** Counts up per client run. */
  id: number;
  /** When the visitor arrived (epoch ms). */
  at: number;
  /** The visitor's "host:port". */
  peer: string;
  /** Still relaying. */
  open: boolean;
  /** How long it lasted, once closed. */
  durationMs?: number;
  /** Bytes delivered to the local service. */
  bytesIn: number;
  /** Bytes delivered to the visitor. */
  bytesOut: number;
  /** Why it ended abnormally (the local service refused, a reset). */
  error?: string;
}

/** Whether the tunnel's local service answers: 'failing' after a dial failed, until one succeeds. */
export interface LocalServiceState {
  state: 'ok' | 'failing' | 'unknown';
  lastError?: string;
  /** Since when (epoch ms) it is in this state. */
  since?: number;
}

/** One tunnel as the dashboard shows it. */
export interface TunnelView extends TunnelEntry {
  status: TunnelStatusKind;
  /** Why the tunnel is in 'error' (e.g. "port 80 is not allowed for this key"). */
  error?: string;
  /** The wire reason of the refusal (e.g. 'port_in_use', 'revoked'), with `error`. */
  errorReason?: string;
  /** When the client tries to open a refused tunnel again (epoch ms); absent when it will not. */
  nextRetryAt?: number;
  /** The local service, as the last dials found it (always set by the client). */
  local?: LocalServiceState;
  /** The last connections, oldest first, at most 20 (always set by the client). */
  recent?: RecentConnection[];
  /**
   * The limits the server applies to this tunnel (its request under the key's ceilings), from its
   * last TunnelStatus; 0 = none.
   */
  effective?: { maxConnections: number; rateLimit: number };
  /** The public address, "host:port", as the server reports it. */
  publicAddress: string;
  activeConnections: number;
  totalConnections: number;
  /** Bytes received from the external peer and sent to the local service. */
  bytesIn: number;
  /** Bytes sent back from the local service to the external peer. */
  bytesOut: number;
  /** Dials of the local service that failed. */
  failedDials: number;
}

/** Something worth showing in the events list. */
export interface ClientEvent {
  at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  tunnel?: string;
}

/** Everything the dashboard renders, as one plain JSON-able object. */
export interface ClientSnapshot {
  connection: ConnectionState;
  /** True while pause(true) holds every tunnel closed on the server (always set by the client). */
  paused?: boolean;
  server: {
    address: string;
    fingerprint?: string;
    /** The ports this key may open on the server (its --allow-ports and the key's permitlisten). */
    allowedPorts?: Array<{ low: number; high: number }>;
    /** The key's per-tunnel ceilings; 0 = none. */
    limits?: { maxConnections: number; rateLimit: number };
  };
  identity: { publicKeyLine: string; fingerprint: string };
  tunnels: TunnelView[];
  /** Most recent last; bounded. */
  events: ClientEvent[];
}

/** Observable client state. Emits 'change' (no arguments) after any change; read snapshot() then. */
export interface StateStoreLike extends EventEmitter {
  snapshot(): ClientSnapshot;
}

/** Run-time tunnel control. Every call validates its input and throws a ConfigError naming the field. */
export interface TunnelManagerLike {
  list(): TunnelConfig[];
  add(tunnel: TunnelConfig): void;
  /** Replace the tunnel called `name` (the new config may rename it). */
  update(name: string, tunnel: TunnelConfig): void;
  remove(name: string): void;
  setEnabled(name: string, enabled: boolean): void;
  /** Tries to open a refused tunnel again now, instead of at its nextRetryAt (TunnelManager has it). */
  retry?(name: string): void;
}

/** Settings a running client takes live (see MttClient.updateSettings). */
export interface ClientSettings {
  /** "host:port" of the server; a change reconnects. */
  server?: string;
  /** The pinned server key (line or SHA256: fingerprint); a change reconnects. */
  serverKey?: string;
  heartbeatSeconds?: number;
  heartbeatTimeoutSeconds?: number;
  reconnectMaxSeconds?: number;
  dataChannelPool?: number;
}
