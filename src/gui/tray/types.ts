/**
 * The tray's interface: what a tray shows and what its menu does. Every tray (StatusNotifierItem on
 * Linux, none elsewhere) implements Tray; nothing here imports an implementation.
 */
import type { TunnelStatusKind } from '../../client/api.js';
import type { WindowState } from '../window-state.js';
import type { IconStatus } from './icons.js';

/** One tunnel as the tray menu shows it. */
export interface TrayTunnel {
  name: string;
  enabled: boolean;
  status: TunnelStatusKind;
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
}

/** What the tray's menu and clicks do. */
export interface TrayActions {
  showWindow(): void;
  hideWindow(): void;
  setTunnelEnabled(name: string, enabled: boolean): void;
  quit(): void;
}

/** A tray icon. */
export interface Tray {
  /** 'status-notifier' on Linux with a session bus, 'none' where there is no tray. */
  readonly kind: string;
  /** Shows a new state; cheap when nothing the tray shows has changed. */
  update(state: TrayState): void;
  close(): Promise<void>;
}
