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
      /** AuthFail reason name from the wire, e.g. 'unknown_key', 'busy', or 'server_key_mismatch'. */
      reason: string;
      message: string;
      /** When the client retries; absent when it has given up (exit-on-failure). */
      nextTryAt?: number;
    }
  | { kind: 'stopped' };

/** A tunnel's life: 'opening' until the server answers, then 'active' or 'error'. */
export type TunnelStatusKind = 'active' | 'opening' | 'error' | 'disabled';

/** One tunnel as the dashboard shows it. */
export interface TunnelView extends TunnelEntry {
  status: TunnelStatusKind;
  /** Why the tunnel is in 'error' (e.g. "port 80 is not allowed for this key"). */
  error?: string;
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
  server: { address: string; fingerprint?: string };
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
}
