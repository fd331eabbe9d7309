import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AppWindow, defaultBrowserCommand, findAppBrowser } from '../../../src/gui/app-window.js';
import { startDashboard } from '../../../src/gui/dashboard/index.js';
import type { WindowState } from '../../../src/gui/window-state.js';
import { createLogger } from '../../../src/util/logger.js';
import { FakeClient } from '../../gui/fake-client.js';
import { chromiumPath } from './lib/browser.js';

const quiet = createLogger({ write: () => {} });

/** Resolves with the next value of an emitter's event, or rejects after timeoutMs. */
function next<T>(emitter: NodeJS.EventEmitter, event: string, timeoutMs = 15_000): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  return once(emitter, event, { signal: ac.signal }).then(
    ([v]) => {
      clearTimeout(timer);
      return v as T;
    },
    () => {
      throw new Error(`no '${event}' within ${timeoutMs} ms`);
    },
  );
}

test('findAppBrowser: $MTT_BROWSER first, then the first executable Chromium-family name on PATH', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-path-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(findAppBrowser({ PATH: dir }, 'linux'), undefined);
  await writeFile(join(dir, 'chromium'), ''); // not executable: skipped
  await writeFile(join(dir, 'google-chrome'), '#!/bin/sh\n');
  await chmod(join(dir, 'google-chrome'), 0o755);
  assert.equal(findAppBrowser({ PATH: `/nonexistent:${dir}` }, 'linux'), join(dir, 'google-chrome'));
  assert.equal(findAppBrowser({ PATH: dir, MTT_BROWSER: '/opt/x/chrome' }, 'linux'), '/opt/x/chrome');
  assert.deepEqual(defaultBrowserCommand('http://127.0.0.1:1/?token=a', 'linux'), [
    'xdg-open',
    ['http://127.0.0.1:1/?token=a'],
  ]);
  assert.deepEqual(defaultBrowserCommand('http://x/', 'darwin'), ['open', ['http://x/']]);
  assert.equal(defaultBrowserCommand('http://x/?a=1&b=2', 'win32')[1].at(-1), 'http://x/?a=1^&b=2');
});

test('the app window is real Chromium in --app mode that logs in once; closing and showing again work', {
  timeout: 90_000,
}, async (t) => {
  const fake = new FakeClient();
  const logins: boolean[] = [];
  const loginEvents = new EventEmitter();
  const dash = await startDashboard({
    state: fake,
    tunnels: fake,
    onLogin: (i) => {
      logins.push(i.oneTime);
      loginEvents.emit('login');
    },
  });
  t.after(() => dash.close());
  const urls: string[] = [];
  const profileDir = await mkdtemp(join(tmpdir(), 'mtt-profile-'));
  t.after(() => rm(profileDir, { recursive: true, force: true }));
  const win = new AppWindow({
    url: () => {
      const u = dash.oneTimeLoginUrl();
      urls.push(u);
      return u;
    },
    log: quiet,
    browser: chromiumPath(),
    profileDir,
    // Headless here; a desktop gets the same flags without these.
    extraArgs: [
      '--headless=new',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => win.dispose());
  const loggedIn = (n: number) =>
    logins.length >= n ? Promise.resolve() : next(loginEvents, 'login', 20_000);

  assert.equal(win.state, 'closed');
  win.open();
  assert.equal(win.state, 'open');
  win.open(); // already open: no second window
  assert.equal(urls.length, 1);
  await loggedIn(1);
  assert.deepEqual(logins, [true]);
  // The one-time link is spent: it cannot log anyone else in.
  const res = await fetch(urls[0]!, { redirect: 'manual' });
  assert.equal(res.status, 401);

  const closed = next<WindowState>(win, 'change');
  win.close();
  assert.equal(await closed, 'closed');
  win.open();
  assert.equal(urls.length, 2);
  await loggedIn(2);
  await win.dispose();
  assert.equal(win.state, 'closed');
});

test('a browser that hands the URL to a running instance and quits leaves the window state unknown', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-fakebrowser-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'browser');
  await writeFile(script, '#!/bin/sh\nexit 0\n');
  await chmod(script, 0o755);
  const win = new AppWindow({
    url: () => 'http://127.0.0.1:1/',
    log: quiet,
    browser: script,
    profileDir: dir,
  });
  const changed = next<WindowState>(win, 'change');
  win.open();
  assert.equal(await changed, 'open');
  assert.equal(await next<WindowState>(win, 'change'), 'unknown');
});
