/**
 * The desktop GUI's own state around a running client: its preferences (notifications), the desktop
 * integration (start at login, the launcher), desktop notifications as the state changes, and what
 * the dashboard's settings view shows and changes.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ClientSnapshot, LiveSettingsPatch, MttClient, startClientFromConfig } from '../client/index.js';
import { defaultPaths } from '../config/files.js';
import type { Logger } from '../util/logger.js';
import type { GuiPreferences, GuiState } from './dashboard-types.js';
import {
  autostartState,
  installLauncher,
  launcherInstalled,
  removeLauncher,
  setAutostart,
} from './desktop/desktop-entry.js';
import { type Notice, Notifier, noticesBetween } from './notifications.js';
import { loadPreferences, type Preferences, savePreferences } from './preferences.js';
import type { WindowState } from './window-state.js';

type ConfigClient = MttClient & Awaited<ReturnType<typeof startClientFromConfig>>;

/** The GUI's state around one client. */
export class GuiSession {
  readonly client: ConfigClient;
  #log: Logger;
  #prefs: Preferences;
  #startAtLogin: boolean;
  #launcher: boolean;
  #notifier: Notifier;
  #last: ClientSnapshot | undefined;
  #settled: ClientSnapshot['connection'] | undefined;
  /** Every notice sent (the tests and the dashboard's events read it). */
  readonly notices: Notice[] = [];

  private constructor(
    client: ConfigClient,
    log: Logger,
    prefs: Preferences,
    autostart: boolean,
    launcher: boolean,
    notifier: Notifier,
  ) {
    this.client = client;
    this.#log = log;
    this.#prefs = prefs;
    this.#startAtLogin = autostart;
    this.#launcher = launcher;
    this.#notifier = notifier;
  }

  static async start(
    client: ConfigClient,
    opts: { log: Logger; busAddress: string | undefined },
  ): Promise<GuiSession> {
    const [prefs, autostart, launcher, notifier] = await Promise.all([
      loadPreferences(),
      autostartState(),
      launcherInstalled(),
      Notifier.start(opts.busAddress, opts.log),
    ]);
    const s = new GuiSession(client, opts.log, prefs, autostart.enabled, launcher, notifier);
    s.#last = client.state.snapshot();
    return s;
  }

  /** Looks at the client's newest state; notifies about what changed (when notifications are on). */
  observe(): void {
    const next = this.client.state.snapshot();
    // 'connecting' is a step between two tries, not news: compare the connection with the last
    // settled state, so a refusal repeated at every try notifies once.
    const prev = this.#last && this.#settled ? { ...this.#last, connection: this.#settled } : this.#last;
    const notices = noticesBetween(prev, next);
    this.#last = next;
    if (next.connection.kind !== 'connecting') this.#settled = next.connection;
    if (!this.#prefs.notifications) return;
    for (const n of notices) {
      this.notices.push(n);
      void this.#notifier.notify(n);
    }
  }

  preferences(): GuiPreferences {
    return {
      notifications: this.#prefs.notifications,
      startAtLogin: this.#startAtLogin,
      launcher: this.#launcher,
    };
  }

  /** What the dashboard shows about the GUI. */
  state(window: WindowState): GuiState {
    const loaded = this.client.sync.current;
    const cfg = loaded.config;
    return {
      window,
      configPath: this.client.sync.path,
      identityPath: this.client.identityPath,
      knownServersPath: loaded.knownServersPath ?? defaultPaths.knownServers(),
      settings: {
        server: cfg.server,
        ...(cfg.serverKey ? { serverKey: cfg.serverKey } : {}),
        heartbeatSeconds: cfg.heartbeatSeconds,
        heartbeatTimeoutSeconds: cfg.heartbeatTimeoutSeconds,
        reconnectMaxSeconds: cfg.reconnectMaxSeconds,
      },
      preferences: this.preferences(),
    };
  }

  /** Changes client settings: validated, applied live, saved (ConfigError names the field). */
  updateSettings(patch: LiveSettingsPatch): Promise<void> {
    return this.client.sync.updateSettings(patch);
  }

  /** Changes the GUI's switches; each applies at once. */
  async setPreferences(patch: Partial<GuiPreferences>): Promise<void> {
    if (patch.notifications !== undefined && patch.notifications !== this.#prefs.notifications) {
      this.#prefs = { ...this.#prefs, notifications: patch.notifications };
      await savePreferences(this.#prefs);
      this.client.state.event('info', `desktop notifications ${patch.notifications ? 'on' : 'off'}`);
    }
    if (patch.startAtLogin !== undefined && patch.startAtLogin !== this.#startAtLogin) {
      await setAutostart(patch.startAtLogin, this.client.sync.path);
      this.#startAtLogin = patch.startAtLogin;
      this.client.state.event(
        'info',
        patch.startAtLogin ? 'mtt gui now starts at login' : 'mtt gui no longer starts at login',
      );
    }
    if (patch.launcher !== undefined && patch.launcher !== this.#launcher) {
      if (patch.launcher) await installLauncher(this.client.sync.path);
      else await removeLauncher();
      this.#launcher = patch.launcher;
      this.client.state.event(
        'info',
        patch.launcher ? 'added to the applications menu' : 'removed from the applications menu',
      );
    }
  }

  /** The config file as it is on disk, for the settings view's Export. */
  async exportConfig(): Promise<{ filename: string; text: string }> {
    await this.client.sync.flush();
    return { filename: basename(this.client.sync.path), text: await readFile(this.client.sync.path, 'utf8') };
  }

  close(): void {
    this.#notifier.close();
    this.#log.debug('gui session closed');
  }
}
