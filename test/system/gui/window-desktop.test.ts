/**
 * The real app window on a real desktop (Xvfb + xfwm4; issue 11, broken item 4): Show restores a
 * minimised window and raises a buried one, the tray's menu follows the window's real state, and a
 * second `mtt gui` brings the first one's window forward.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { startRealSetup } from '../../gui/real-setup.js';
import { startDesktop, until } from './lib/desktop.js';
import { spawnGui } from './lib/gui-process.js';
import { findEntry, TestTrayHost } from './lib/tray-host.js';

test('Show window restores a minimised window and raises a buried one; a second start does too', {
  timeout: 180_000,
}, async (t) => {
  const desk = await startDesktop(t);
  const setup = await startRealSetup(t, []);
  const host = await TestTrayHost.start(desk.busAddress);
  t.after(() => host.close());
  const env = { ...desk.env, MTT_CONFIG_DIR: setup.dir, MTT_BROWSER: '/usr/bin/chromium' };
  const gui = spawnGui(t, ['--config', setup.configPath, '--log-format', 'json'], env);
  await gui.waitForOutput(/Dashboard: http/);

  // The window: Chromium's --app window, found by the class mtt gives it.
  let wid = '';
  await until(
    'the app window to show',
    async () => {
      wid =
        (await desk.x('xdotool', ['search', '--onlyvisible', '--class', 'MiniTCPTunnel']))
          .trim()
          .split('\n')[0] ?? '';
      return wid !== '';
    },
    30_000,
  );
  await until('the window to log in', async () => /a browser logged in/.test(gui.stderr()), 30_000);
  const hidden = async () =>
    /_NET_WM_STATE_HIDDEN/.test(await desk.x('xprop', ['-id', wid, '_NET_WM_STATE']));
  const active = async () => (await desk.x('xdotool', ['getactivewindow'])).trim() === String(Number(wid));
  const item = await host.waitForItem(20_000);
  const menuHas = async (label: string) => findEntry((await host.menu(item)).root, label) !== undefined;
  const clickLabel = async (label: RegExp) => {
    const entry = findEntry((await host.menu(item)).root, label);
    assert.ok(entry, `a menu item ${label}`);
    await host.click(item, entry.id);
  };
  assert.ok(await menuHas('Close window'));

  // Minimised: the menu says so, and Show brings it back.
  await desk.x('xdotool', ['windowminimize', wid]);
  await until('the window to be minimised', hidden);
  await until('the menu to follow the real state', () => menuHas('Show window (minimised)'), 10_000);
  await clickLabel(/^Show window/);
  await until('the window to be restored', async () => !(await hidden()), 10_000);
  await until('the window to be the active one', active, 10_000);
  await until('the menu to follow', () => menuHas('Show window'), 10_000);

  // Buried under another window: Show raises it.
  const cover = spawn('xmessage', ['-geometry', '1280x800+0+0', 'a window on top'], {
    env: desk.env,
    stdio: 'ignore',
  });
  t.after(() => cover.kill());
  await until('the other window to cover it', async () => !(await active()), 10_000);
  await clickLabel(/^Show window/);
  await until('the window to be raised and active', active, 10_000);
  const stacking = await desk.x('xprop', ['-root', '_NET_CLIENT_LIST_STACKING']);
  const top = stacking.trim().split(/[ ,]+/).at(-1)!;
  assert.equal(Number(top), Number(wid), `on top of the stack: ${stacking}`);

  // A second `mtt gui` on the same config brings this window forward and exits.
  await desk.x('xdotool', ['windowminimize', wid]);
  await until('the window to be minimised', hidden);
  const second = spawnGui(t, ['--config', setup.configPath], env);
  assert.equal((await second.exited(20_000))[0], 0, second.stderr());
  await until('the second start to restore the window', async () => !(await hidden()), 10_000);

  gui.child.kill('SIGTERM');
  assert.equal((await gui.exited(15_000))[0], 0, gui.stderr());
});
