/**
 * The tray's interface: what a tray shows and what its menu does. Every tray (StatusNotifierItem on
 * Linux, none elsewhere) implements Tray; nothing here imports an implementation.
 */
import type { TunnelStatusKind } from '../../client/index.js';
import type { WindowState } from '../window-state.js';
import type { IconStatus } from './icons.js';

/** One tunnel as the tray menu shows it. */
export interface TrayTunnel {
  name: string;
  enabled: boolean;
  status: TunnelStatusKind;
  /** The local service refused the last connection (the tunnel is open, the service is not). */
  localDown?: boolean;
}

/** Everything a tray shows. */
export interface TrayState {
  status: IconStatus;
  /** Tooltip title, e.g. "MiniTCPTunnel: connected". */
  title: string;
  /** One line about the connection, e.g. "Connected to vps.example.com:9000". */
  detail: string;
  tunnels: TrayTunnel[];
  window: WindowState;
  /** The client is waiting to connect (offer "Reconnect now"). */
  canReconnect?: boolean;
  /** Every tunnel is paused on the server. */
  paused?: boolean;
  /** Connections open right now, over all tunnels (Quit asks first when there are any). */
  activeConnections?: number;
}

/** What the tray's menu and clicks do. */
export interface TrayActions {
  /** Opens the window, or restores and raises it when it is open. */
  showWindow(): void;
  /** Closes the window (the client keeps running). */
  hideWindow(): void;
  setTunnelEnabled(name: string, enabled: boolean): void;
  /** Stops the client (ending every connection) and the process. */
  quit(): void;
  /** Skips the wait before the next connection attempt. */
  reconnectNow?(): void;
  /** Tries every refused tunnel again now. */
  retryTunnels?(): void;
  /** Closes (true) or reopens (false) every tunnel on the server. */
  setPaused?(paused: boolean): void;
}

/** A tray icon. */
export interface Tray {
  /** 'status-notifier' on Linux with a session bus, 'none' where there is no tray. */
  readonly kind: string;
  /** Shows a new state; cheap when nothing the tray shows has changed. */
  update(state: TrayState): void;
  close(): Promise<void>;
}
