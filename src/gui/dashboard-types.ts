/**
 * The JSON shapes the dashboard server and the web app exchange. Type-only, so the web app (built by
 * Vite) and the Node side share one definition.
 */
import type { ClientSnapshot } from '../client/index.js';
import type { TunnelField } from '../config/index.js';
import type { SetupInfo } from './setup.js';
import type { WindowState } from './window-state.js';

/** Bytes per second for one tunnel, oldest first, one sample per `sampleMs`. */
export interface TunnelRates {
  in: number[];
  out: number[];
}

/** What the server pushes on the event stream (`event: state`) and answers on GET /api/state. */
export interface DashboardUpdate {
  snapshot: ClientSnapshot;
  /** Recent transfer rates per tunnel name. */
  rates: Record<string, TunnelRates>;
  /** Interval between two rate samples, in milliseconds. */
  sampleMs: number;
  /** The server's clock when this update was made (ms since the epoch), for "next try in N s". */
  now: number;
  /** The desktop GUI's own state (absent on a bare dashboard). */
  gui?: GuiState;
  /** First run: no config file yet; the page shows the setup view. */
  setup?: SetupInfo;
}

/** The client settings the settings view edits (the config file's top-level fields). */
export interface GuiSettings {
  server: string;
  serverKey?: string;
  heartbeatSeconds: number;
  heartbeatTimeoutSeconds: number;
  reconnectMaxSeconds: number;
}

/** The desktop GUI's own switches. */
export interface GuiPreferences {
  notifications: boolean;
  /** An XDG autostart entry starts this GUI at login. */
  startAtLogin: boolean;
  /** The launcher is in the applications menu. */
  launcher: boolean;
}

/** What the desktop GUI adds to each update. */
export interface GuiState {
  window: WindowState;
  /** The config file the client runs from. */
  configPath: string;
  /** The client's private key file, and the record of trusted server keys. */
  identityPath: string;
  knownServersPath: string;
  settings: GuiSettings;
  preferences: GuiPreferences;
}

/** Body of every 4xx/5xx answer from the JSON API. */
export interface ApiError {
  error: string;
  /** The tunnel field the error is about, when there is one. */
  field?: TunnelField;
  /** Every wrong field with its message (a form shows each beside its input). */
  fields?: Partial<Record<TunnelField | keyof GuiSettings, string>>;
}
