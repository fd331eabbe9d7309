/**
 * The desktop window: the dashboard in a Chromium-family browser's `--app` mode (no tabs or address
 * bar) with its own profile folder, so it behaves like an app window and its lifetime is one process.
 * With no such browser installed, the default browser opens the dashboard instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { configDir } from '../config/files.js';
import type { Logger } from '../util/logger.js';
import { CdpPipe } from './cdp-pipe.js';
import type { WindowState } from './window-state.js';

/** Browsers tried in order on PATH (Linux, BSD). */
export const APP_BROWSERS = [
  'chromium',
  'chromium-browser',
  'google-chrome',
  'google-chrome-stable',
  'microsoft-edge',
  'microsoft-edge-stable',
];

/** A launch that ends this soon handed the URL to a browser that was already running. */
const HANDOFF_MS = 2000;

/** The window's own browser profile, under the user's mtt config folder. */
export function windowProfileDir(): string {
  return join(configDir(), 'gui-profile');
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first Chromium-family browser found: $MTT_BROWSER, then PATH (or the usual app folders). */
export function findAppBrowser(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  if (env.MTT_BROWSER) return env.MTT_BROWSER;
  if (platform === 'darwin') {
    return [
      '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
      '/Applications/Chromium.app/Contents/MacOS/Chromium',
      '/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge',
    ].find((p) => existsSync(p));
  }
  if (platform === 'win32') {
    const roots = [env.PROGRAMFILES, env['PROGRAMFILES(X86)'], env.LOCALAPPDATA].filter(
      (r): r is string => !!r,
    );
    for (const root of roots) {
      for (const rel of [
        'Google\\Chrome\\Application\\chrome.exe',
        'Microsoft\\Edge\\Application\\msedge.exe',
      ]) {
        const p = join(root, rel);
        if (existsSync(p)) return p;
      }
    }
    return undefined;
  }
  for (const name of APP_BROWSERS) {
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (dir && isExecutable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

/** The command that opens a URL in the default browser, per platform. */
export function defaultBrowserCommand(
  url: string,
  platform: NodeJS.Platform = process.platform,
): [string, string[]] {
  if (platform === 'darwin') return ['open', [url]];
  if (platform === 'win32') return ['cmd', ['/c', 'start', '""', url.replace(/&/g, '^&')]];
  return ['xdg-open', [url]];
}

/** Options for {@link AppWindow}. */
export interface AppWindowOptions {
  /** Makes the URL to open (a fresh one-time login link each time). */
  url: () => string;
  log: Logger;
  /** Browser to use; found with {@link findAppBrowser} when absent. */
  browser?: string;
  profileDir?: string;
  /** Extra browser flags (tests add headless ones). */
  extraArgs?: string[];
  /** How often the window's state (minimised or not) is read while it is open. Default 1000 ms. */
  pollMs?: number;
}

/** How often the window's state is read while it is open. */
const WINDOW_POLL_MS = 1000;

/**
 * The dashboard window. Emits 'change' (WindowState) when it opens, is minimised or restored, or
 * closes. It drives its browser over the DevTools protocol on a private pipe, so Show can restore a
 * minimised window and raise a buried one, and the state it reports is the window's real one.
 */
export class AppWindow extends EventEmitter {
  #opts: AppWindowOptions;
  #child: ChildProcess | undefined;
  #cdp: CdpPipe | undefined;
  /** The page target of our window, once the browser told us. */
  #target: string | undefined;
  #poll: NodeJS.Timeout | undefined;
  #state: WindowState = 'closed';
  #saidFallback = false;
  /** Set while we are closing our own window, so its quick exit is not taken for a hand-off. */
  #closing = false;

  constructor(opts: AppWindowOptions) {
    super();
    this.#opts = opts;
  }

  get state(): WindowState {
    return this.#state;
  }

  #set(state: WindowState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.emit('change', state);
  }

  /** Opens the window; if it is open already, restores it when minimised and brings it to the front. */
  open(): void {
    if (this.#child) {
      void this.#bringForward();
      return;
    }
    const browser = this.#opts.browser ?? findAppBrowser();
    const url = this.#opts.url();
    if (!browser) {
      if (!this.#saidFallback) {
        this.#saidFallback = true;
        this.#opts.log.info(
          'no Chromium, Chrome or Edge found; opening the dashboard in the default browser',
        );
      }
      const [cmd, args] = defaultBrowserCommand(url);
      const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
      child.on('error', (err) =>
        this.#opts.log.warn('could not open a browser; run with --no-window and open the URL by hand', {
          error: err,
        }),
      );
      child.unref();
      this.#set('unknown');
      return;
    }
    const args = [
      `--app=${url}`,
      `--user-data-dir=${this.#opts.profileDir ?? windowProfileDir()}`,
      '--no-first-run',
      '--no-default-browser-check',
      '--window-size=1100,780',
      '--class=MiniTCPTunnel',
      // An app window with its own profile has no use for sync, updates or background fetches.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // DevTools on fds 3 and 4 only: no port that other local users or pages could reach.
      '--remote-debugging-pipe',
      ...(this.#opts.extraArgs ?? []),
    ];
    // Chromium will not start as root with its sandbox on; a root session is a LAN box's console.
    if (process.getuid?.() === 0 && !args.includes('--no-sandbox')) args.push('--no-sandbox', '--test-type');
    const started = Date.now();
    const child = spawn(browser, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#closing = false;
    this.#target = undefined;
    this.#set('open');
    const cdp = new CdpPipe(child.stdio[3] as Writable, child.stdio[4] as Readable);
    this.#cdp = cdp;
    cdp.on(
      'event',
      (method: string, params: { targetInfo?: { targetId: string; type: string }; targetId?: string }) => {
        if (method === 'Target.targetCreated' && params.targetInfo?.type === 'page') {
          this.#target ??= params.targetInfo.targetId;
        } else if (method === 'Target.targetDestroyed' && params.targetId === this.#target) {
          // Our window closed; the browser ends by itself once its last window is gone.
          this.#target = undefined;
          void cdp.send('Browser.close').catch(() => {});
        }
      },
    );
    cdp.send('Target.setDiscoverTargets', { discover: true }).catch((err: Error) => {
      this.#opts.log.debug('the window does not speak the DevTools protocol; Show cannot restore it', {
        browser,
        error: err,
      });
    });
    this.#poll = setInterval(() => void this.#readState(), this.#opts.pollMs ?? WINDOW_POLL_MS);
    this.#poll.unref();
    child.on('error', (err) => {
      this.#opts.log.warn('could not start the browser window', { browser, error: err });
      this.#gone('closed');
    });
    child.on('exit', (code) => {
      // A browser already running with this profile takes the URL over and the new process quits at once.
      const handedOff = !this.#closing && code === 0 && Date.now() - started < HANDOFF_MS;
      this.#gone(handedOff ? 'unknown' : 'closed');
    });
  }

  #gone(state: WindowState): void {
    this.#child = undefined;
    this.#cdp = undefined;
    this.#target = undefined;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
    this.#set(state);
  }

  async #windowId(): Promise<number | undefined> {
    const cdp = this.#cdp;
    if (!cdp || this.#target === undefined) return undefined;
    const { windowId } = await cdp.send<{ windowId: number }>('Browser.getWindowForTarget', {
      targetId: this.#target,
    });
    return windowId;
  }

  /** Reads whether the window is minimised (the browser knows; the window manager told it). */
  async #readState(): Promise<void> {
    try {
      const id = await this.#windowId();
      if (id === undefined || !this.#child) return;
      const { bounds } = await this.#cdp!.send<{ bounds: { windowState: string } }>(
        'Browser.getWindowBounds',
        {
          windowId: id,
        },
      );
      if (this.#child) this.#set(bounds.windowState === 'minimized' ? 'minimized' : 'open');
    } catch {
      // The window is closing, or the browser does not speak the protocol: keep what we know.
    }
  }

  /** Restores a minimised window and raises it above the others. */
  async #bringForward(): Promise<void> {
    try {
      const id = await this.#windowId();
      if (id === undefined) return;
      const cdp = this.#cdp!;
      const { bounds } = await cdp.send<{ bounds: { windowState: string } }>('Browser.getWindowBounds', {
        windowId: id,
      });
      if (bounds.windowState === 'minimized') {
        await cdp.send('Browser.setWindowBounds', { windowId: id, bounds: { windowState: 'normal' } });
      }
      await cdp.send('Target.activateTarget', { targetId: this.#target });
      await this.#readState();
    } catch (err) {
      this.#opts.log.debug('could not bring the window forward', { error: err as Error });
    }
  }

  /** Closes our window (the client keeps running in the tray). */
  close(): void {
    const child = this.#child;
    if (!child) return;
    this.#closing = true;
    const cdp = this.#cdp;
    if (cdp && this.#target !== undefined) {
      // A clean close lets the browser save its profile; a browser that does not answer is stopped.
      cdp.send('Browser.close').catch(() => child.kill('SIGTERM'));
    } else {
      child.kill('SIGTERM');
    }
  }

  /** Closes the window and waits (bounded) for its process to end. */
  async dispose(timeoutMs = 5000): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.close();
    const term = setTimeout(() => child.kill('SIGTERM'), timeoutMs / 2);
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}
