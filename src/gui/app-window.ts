/**
 * The desktop window: the dashboard in a Chromium-family browser's `--app` mode (no tabs or address
 * bar) with its own profile folder, so it behaves like an app window and its lifetime is one process.
 * With no such browser installed, the default browser opens the dashboard instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { configDir } from '../config/paths.js';
import type { Logger } from '../util/logger.js';
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
}

/** The dashboard window. Emits 'change' (WindowState) when it opens or closes. */
export class AppWindow extends EventEmitter {
  #opts: AppWindowOptions;
  #child: ChildProcess | undefined;
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

  /** Opens the window unless ours is already open. */
  open(): void {
    if (this.#child) return;
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
      ...(this.#opts.extraArgs ?? []),
    ];
    // Chromium will not start as root with its sandbox on; a root session is a LAN box's console.
    if (process.getuid?.() === 0 && !args.includes('--no-sandbox')) args.push('--no-sandbox', '--test-type');
    const started = Date.now();
    const child = spawn(browser, args, { stdio: 'ignore' });
    this.#child = child;
    this.#closing = false;
    this.#set('open');
    child.on('error', (err) => {
      this.#opts.log.warn('could not start the browser window', { browser, error: err });
      this.#child = undefined;
      this.#set('closed');
    });
    child.on('exit', (code) => {
      this.#child = undefined;
      // A browser already running with this profile takes the URL over and the new process quits at once.
      const handedOff = !this.#closing && code === 0 && Date.now() - started < HANDOFF_MS;
      this.#set(handedOff ? 'unknown' : 'closed');
    });
  }

  /** Closes our window (the client keeps running in the tray). */
  close(): void {
    if (!this.#child) return;
    this.#closing = true;
    this.#child.kill('SIGTERM');
  }

  /** Closes the window and waits (bounded) for its process to end. */
  async dispose(timeoutMs = 5000): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.close();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
