/**
 * `mtt gui`: the client from a config file, its dashboard on 127.0.0.1, a tray icon and an app window.
 * Closing the window leaves the client running in the tray; the tray's Show opens it again; Quit (or
 * the AbortSignal) stops everything.
 */
import { type MttClient, startClientFromConfig } from '../client/index.js';
import { ConfigError } from '../config/config-error.js';
import { createLogger, type Logger } from '../util/logger.js';
import { AppWindow } from './app-window.js';
import { type Dashboard, startDashboard } from './dashboard/index.js';
import { createTray, type Tray, trayStateFromSnapshot } from './tray/tray.js';

/** How often, at most, the tray is refreshed while the state changes (byte counters change a lot). */
const TRAY_REFRESH_MS = 250;

/** Options of {@link guiCommand}. */
export interface GuiCommandOptions {
  /** The client config file; tunnel changes made in the dashboard or tray are saved back to it. */
  configPath: string;
  /** Print the dashboard URL (with its token) instead of opening a window. */
  noWindow: boolean;
  /** Stops everything when aborted (SIGINT/SIGTERM in the CLI). */
  signal: AbortSignal;
  /** Dashboard port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  log?: Logger;
  /** Where the URL line goes; stdout by default. */
  print?: (line: string) => void;
  /** Browser for the window; found on the system when absent. */
  browser?: string;
  /** Extra browser flags. */
  browserArgs?: string[];
  /** Set false to run without a tray icon. */
  tray?: boolean;
  /** D-Bus address for the tray; the session bus by default. */
  busAddress?: string;
}

/** Runs the GUI until Quit or abort; resolves with the process exit code. */
export async function guiCommand(opts: GuiCommandOptions): Promise<number> {
  if (!opts.configPath) {
    throw new ConfigError('mtt gui needs --config FILE (the client config file)', '--config');
  }
  const log = opts.log ?? createLogger();
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });

  let client: MttClient | undefined;
  let dashboard: Dashboard | undefined;
  let tray: Tray | undefined;
  let window: AppWindow | undefined;
  try {
    client = await startClientFromConfig(opts.configPath, {
      log: log.child({ part: 'client' }),
      signal: stop.signal,
    });
    const c = client;
    dashboard = await startDashboard({
      state: c.state,
      tunnels: c.tunnels,
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      signal: stop.signal,
      onLogin: ({ oneTime }) =>
        log.info('a browser logged in to the dashboard', { link: oneTime ? 'window' : 'printed' }),
    });
    const dash = dashboard;
    const win = new AppWindow({
      url: () => dash.oneTimeLoginUrl(),
      log,
      ...(opts.browser ? { browser: opts.browser } : {}),
      ...(opts.browserArgs ? { extraArgs: opts.browserArgs } : {}),
    });
    window = win;

    const quit = () => stop.abort();
    tray =
      opts.tray === false
        ? undefined
        : await createTray(
            {
              showWindow: () => win.open(),
              hideWindow: () => win.close(),
              setTunnelEnabled: (name, enabled) => {
                try {
                  c.tunnels.setEnabled(name, enabled);
                } catch (err) {
                  log.warn('could not change the tunnel from the tray', {
                    tunnel: name,
                    error: err as Error,
                  });
                }
              },
              quit,
            },
            { log, ...(opts.busAddress ? { busAddress: opts.busAddress } : {}) },
          );

    // Keep the tray in step with the client, coalescing bursts of changes.
    let refreshTimer: NodeJS.Timeout | undefined;
    const refreshTray = () => tray?.update(trayStateFromSnapshot(c.state.snapshot(), win.state));
    const scheduleRefresh = () => {
      refreshTimer ??= setTimeout(() => {
        refreshTimer = undefined;
        refreshTray();
      }, TRAY_REFRESH_MS);
    };
    c.state.on('change', scheduleRefresh);
    win.on('change', refreshTray);
    refreshTray();

    if (opts.noWindow) {
      print(`Dashboard: ${dash.loginUrl}`);
    } else {
      print(`Dashboard: ${dash.origin} (opening a window; run with --no-window to get a login link instead)`);
      win.open();
    }
    if (tray?.kind === 'none' && opts.noWindow) {
      log.info('no tray icon: stop with Ctrl+C');
    }

    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    c.state.off('change', scheduleRefresh);
    if (refreshTimer) clearTimeout(refreshTimer);
    return 0;
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    stop.abort();
    await window?.dispose();
    await tray?.close();
    await dashboard?.close();
    await client?.close();
  }
}
