/**
 * `mtt gui`: the client from a config file, its dashboard on 127.0.0.1, a tray icon and an app window.
 * Closing the window leaves the client running in the tray; the tray's Show opens it again (or brings
 * it forward); Quit (or the AbortSignal) ends every connection and stops everything. One instance per
 * config file: a second one asks the first to show its window and exits.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type MttClient, startClientFromConfig } from '../client/index.js';
import { configDir } from '../config/files.js';
import { createLogger, type Logger } from '../util/logger.js';
import { AppWindow } from './app-window.js';
import { type Dashboard, startDashboard } from './dashboard/index.js';
import { sessionBusAddress } from './dbus/connection.js';
import { guiRoutes } from './gui-routes.js';
import { GuiSession } from './gui-session.js';
import { acquireInstanceLock, type HeldLock, lockPathFor } from './instance-lock.js';
import { defaultConfigPath, LateClient, prepareSetup } from './setup.js';
import { setupRoutes } from './setup-routes.js';
import { createTray, type Tray, trayStateFromSnapshot } from './tray/tray.js';

/** How often, at most, the tray is refreshed while the state changes (byte counters change a lot). */
const TRAY_REFRESH_MS = 250;

/** Options of {@link guiCommand}. */
export interface GuiCommandOptions {
  /**
   * The client config file; tunnel changes made in the dashboard or tray are saved back to it. Empty:
   * the default (client.json in the mtt config folder). A missing file opens the setup view.
   */
  configPath: string;
  /** Print the dashboard URL (with its token) instead of opening a window. */
  noWindow: boolean;
  /** Stops everything when aborted (SIGINT/SIGTERM in the CLI). */
  signal: AbortSignal;
  /** Dashboard port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /**
   * `Host` values the dashboard also accepts, for reaching it through a forwarded port
   * (`ssh -L 8080:127.0.0.1:PORT` makes the browser send `Host: localhost:8080`).
   */
  dashboardHosts?: string[];
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
  /** Folder of the instance lock sockets (tests); see lockFolder(). */
  lockFolder?: string;
}

/** The window's browser profile for one config file, so two configs' windows never share one. */
function profileFor(configPath: string): string {
  return join(configDir(), 'gui-profile', createHash('sha256').update(configPath).digest('hex').slice(0, 16));
}

/** Runs the GUI until Quit or abort; resolves with the process exit code. */
export async function guiCommand(opts: GuiCommandOptions): Promise<number> {
  const log = opts.log ?? createLogger();
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  // No --config: the default file, set up in the dashboard on first run.
  const configPath = resolve(opts.configPath || defaultConfigPath());

  const lock = await acquireInstanceLock(await lockPathFor(configPath, opts.lockFolder));
  if (!lock.held) {
    const { pid, origin } = lock.answer;
    print(
      `mtt gui is already running for ${configPath} (pid ${pid})${origin ? `, dashboard ${origin}` : ''}; ` +
        'asked it to show its window',
    );
    return 0;
  }

  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  const stopped = new Promise<void>((r) => {
    if (stop.signal.aborted) r();
    else stop.signal.addEventListener('abort', () => r(), { once: true });
  });

  let client: (MttClient & Awaited<ReturnType<typeof startClientFromConfig>>) | undefined;
  let dashboard: Dashboard | undefined;
  let tray: Tray | undefined;
  let window: AppWindow | undefined;
  let session: GuiSession | undefined;
  const heldLock: HeldLock = lock;
  const late = new LateClient(existsSync(configPath) ? undefined : await prepareSetup(configPath, log));
  try {
    const quit = () => stop.abort();
    const busAddress = opts.busAddress ?? sessionBusAddress();
    let finishSetup: () => void = () => {};
    const setupDone = new Promise<void>((r) => {
      finishSetup = r;
    });
    let win: AppWindow | undefined;
    dashboard = await startDashboard({
      state: late,
      tunnels: late,
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.dashboardHosts ? { extraHosts: opts.dashboardHosts } : {}),
      routes: () => [
        ...setupRoutes({ late, done: () => finishSetup() }),
        ...guiRoutes({ session: () => session, quit }),
      ],
      extra: () =>
        session ? { gui: session.state(win?.state ?? 'closed') } : late.setup ? { setup: late.setup } : {},
      onLogin: ({ oneTime }) =>
        log.info('a browser logged in to the dashboard', { link: oneTime ? 'window' : 'printed' }),
    });
    const dash = dashboard;
    win = new AppWindow({
      url: () => dash.oneTimeLoginUrl(),
      log,
      profileDir: profileFor(configPath),
      ...(opts.browser ? { browser: opts.browser } : {}),
      ...(opts.browserArgs ? { extraArgs: opts.browserArgs } : {}),
    });
    window = win;
    const w = win;
    heldLock.onRequest(() => {
      log.info('another mtt gui was started for this config; showing this one');
      if (!opts.noWindow) w.open();
      return { ok: true, pid: process.pid, origin: dash.origin };
    });
    w.on('change', () => dash.refresh());

    if (late.setup) {
      log.info('no config file yet: set up the server in the dashboard', { config: configPath });
      openOrPrint(opts, dash, w, print);
      await Promise.race([setupDone, stopped]);
      if (stop.signal.aborted) return 0;
    }

    // No signal: Quit closes the client itself, dropping every connection (see finally).
    client = await startClientFromConfig(configPath, { log: log.child({ part: 'client' }) });
    const c = client;
    session = await GuiSession.start(c, { log, busAddress });
    const gs = session;
    late.attach(c);

    const warnTray = (what: string) => (err: unknown) =>
      log.warn(`could not ${what} from the tray`, { error: err as Error });
    tray =
      opts.tray === false
        ? undefined
        : await createTray(
            {
              showWindow: () => w.open(),
              hideWindow: () => w.close(),
              setTunnelEnabled: (name, enabled) => {
                try {
                  c.tunnels.setEnabled(name, enabled);
                } catch (err) {
                  warnTray(`change ${name}`)(err);
                }
              },
              quit,
              reconnectNow: () => c.reconnectNow(),
              retryTunnels: () => {
                for (const t of c.state.snapshot().tunnels) {
                  if (t.status !== 'error') continue;
                  try {
                    c.tunnels.retry(t.name);
                  } catch (err) {
                    warnTray(`retry ${t.name}`)(err);
                  }
                }
              },
              setPaused: (paused) => c.pause(paused),
            },
            { log, ...(busAddress ? { busAddress } : {}) },
          );

    // Keep the tray in step with the client, coalescing bursts of changes.
    let refreshTimer: NodeJS.Timeout | undefined;
    const refreshTray = () => tray?.update(trayStateFromSnapshot(c.state.snapshot(), w.state));
    const scheduleRefresh = () => {
      refreshTimer ??= setTimeout(() => {
        refreshTimer = undefined;
        refreshTray();
      }, TRAY_REFRESH_MS);
    };
    c.state.on('change', scheduleRefresh);
    const observe = () => gs.observe();
    c.state.on('change', observe);
    w.on('change', refreshTray);
    refreshTray();

    // (Once per run: after a first-run setup the window is open already.)
    openOrPrint(opts, dash, w, print);
    if (tray?.kind === 'none' && opts.noWindow) {
      log.info('no tray icon: stop with Ctrl+C');
    }

    await stopped;
    c.state.off('change', scheduleRefresh);
    c.state.off('change', observe);
    if (refreshTimer) clearTimeout(refreshTimer);
    // Tell open pages before their server goes, so they show that mtt has quit (not "retrying").
    dash.broadcast('quit', { at: Date.now() });
    return 0;
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    stop.abort();
    late.detach();
    // Quit means quit: every tunneled connection ends now, so nothing keeps the process alive.
    await Promise.all([window?.dispose(), tray?.close(), client?.close({ dropConnections: true })]);
    session?.close();
    await dashboard?.close();
    await heldLock.release();
  }
}

const shown = new WeakSet<Dashboard>();

/** Opens the window, or prints the login link with --no-window. Once per dashboard. */
function openOrPrint(
  opts: GuiCommandOptions,
  dash: Dashboard,
  w: AppWindow,
  print: (line: string) => void,
): void {
  if (shown.has(dash)) return;
  shown.add(dash);
  if (opts.noWindow) {
    print(`Dashboard: ${dash.loginUrl}`);
  } else {
    print(`Dashboard: ${dash.origin} (opening a window; run with --no-window to get a login link instead)`);
    w.open();
  }
}
