/**
 * A real desktop for a test: Xvfb on a free display, a private session bus, the xfwm4 window manager,
 * and on request xfce4-panel (a real StatusNotifierItem host) and xfce4-notifyd (a real notification
 * server). Everything is started for one test and stopped after it; a missing program fails loudly
 * with the apt-get line that installs it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { startPrivateBus } from './private-bus.js';

const run = promisify(execFile);

/** Programs the desktop uses, and the Debian package of each. */
const PROGRAMS: Record<string, string> = {
  Xvfb: 'xvfb',
  xfwm4: 'xfwm4',
  'xfce4-panel': 'xfce4-panel',
  xdotool: 'xdotool',
  xprop: 'x11-utils',
  xmessage: 'x11-utils',
  import: 'imagemagick',
};
const NOTIFYD = '/usr/lib/x86_64-linux-gnu/xfce4/notifyd/xfce4-notifyd';

/** Throws with the install line when a program is missing. */
export function need(program: string): void {
  const found = program.startsWith('/')
    ? existsSync(program)
    : (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, program)));
  if (!found) {
    const pkg = PROGRAMS[program] ?? (program === NOTIFYD ? 'xfce4-notifyd' : program);
    throw new Error(`${program} is missing: apt-get install -y --no-install-recommends ${pkg}`);
  }
}

export interface Desktop {
  /** DISPLAY, e.g. ":12". */
  display: string;
  /** DBUS_SESSION_BUS_ADDRESS of the desktop's own bus. */
  busAddress: string;
  /** A folder for this desktop's HOME and config (removed after the test). */
  home: string;
  /** The environment a program on this desktop runs with. */
  env: NodeJS.ProcessEnv;
  /** Runs an X tool (xdotool, xprop, …) on this display; resolves with its stdout. */
  x(program: string, args: string[]): Promise<string>;
  /** Starts xfce4-panel with a Status Tray; resolves once it owns org.kde.StatusNotifierWatcher. */
  startPanel(): Promise<{ stop(): Promise<void> }>;
  /** Starts xfce4-notifyd; resolves once it owns org.freedesktop.Notifications. */
  startNotifyd(): Promise<void>;
  /** A screenshot of the whole screen. */
  screenshot(file: string): Promise<void>;
}

/** Polls `check` every 100 ms until it returns true; fails with `what` after timeoutMs. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function track(t: TestContext, child: ChildProcess): void {
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  });
}

/** Starts Xvfb (a free display picked by Xvfb itself), a session bus and xfwm4. */
export async function startDesktop(
  t: TestContext,
  opts: { width?: number; height?: number } = {},
): Promise<Desktop> {
  need('Xvfb');
  need('xfwm4');
  need('xprop');
  const home = await mkdtemp(join(tmpdir(), 'mtt-desktop-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const xvfb = spawn(
    'Xvfb',
    ['-displayfd', '3', '-screen', '0', `${opts.width ?? 1280}x${opts.height ?? 800}x24`, '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] },
  );
  track(t, xvfb);
  const display = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('Xvfb did not report its display in 10 s')), 10_000);
    (xvfb.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
    xvfb.once('exit', (code) => reject(new Error(`Xvfb exited (${code})`)));
  });
  const bus = await startPrivateBus();
  t.after(() => bus.close());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DISPLAY: display,
    DBUS_SESSION_BUS_ADDRESS: bus.address,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_DATA_HOME: join(home, '.local/share'),
    NO_AT_BRIDGE: '1',
  };
  delete env.XDG_RUNTIME_DIR;
  const x = async (program: string, args: string[]) => {
    need(program);
    return (await run(program, args, { env, timeout: 10_000 })).stdout;
  };
  const wm = spawn('xfwm4', ['--compositor=off'], { env, stdio: 'ignore' });
  track(t, wm);
  await until('xfwm4 to manage the screen', async () =>
    /window id # 0x/.test(await x('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK'])),
  );
  const owner = async (name: string) => {
    const { stdout } = await run(
      'gdbus',
      [
        'call',
        '--address',
        bus.address,
        '--dest',
        'org.freedesktop.DBus',
        '--object-path',
        '/org/freedesktop/DBus',
        '--method',
        'org.freedesktop.DBus.NameHasOwner',
        name,
      ],
      { timeout: 5000 },
    );
    return stdout.includes('true');
  };
  return {
    display,
    busAddress: bus.address,
    home,
    env,
    x,
    startPanel: async () => {
      need('xfce4-panel');
      const panel = spawn('xfce4-panel', ['--disable-wm-check'], { env, stdio: 'ignore' });
      track(t, panel);
      await until(
        'xfce4-panel to host status notifier items',
        () => owner('org.kde.StatusNotifierWatcher'),
        20_000,
      );
      return {
        stop: async () => {
          if (panel.exitCode !== null || panel.signalCode !== null) return;
          const gone = new Promise((r) => panel.once('exit', r));
          panel.kill('SIGTERM');
          await gone;
        },
      };
    },
    startNotifyd: async () => {
      need(NOTIFYD);
      const notifyd = spawn(NOTIFYD, [], { env, stdio: 'ignore' });
      track(t, notifyd);
      await until('xfce4-notifyd to own org.freedesktop.Notifications', () =>
        owner('org.freedesktop.Notifications'),
      );
    },
    screenshot: async (file) => {
      await x('import', ['-window', 'root', file]);
    },
  };
}
