/**
 * The tray through a real StatusNotifierItem host: xfce4-panel's Status Tray under Xvfb. The icon
 * registers, is drawn in the panel, and comes back after the panel restarts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startRealSetup } from '../../gui/real-setup.js';
import { startDesktop, until } from './lib/desktop.js';
import { spawnGui } from './lib/gui-process.js';

const run = promisify(execFile);

async function registeredItems(bus: string): Promise<string> {
  const { stdout } = await run(
    'gdbus',
    [
      'call',
      '--address',
      bus,
      '--dest',
      'org.kde.StatusNotifierWatcher',
      '--object-path',
      '/StatusNotifierWatcher',
      '--method',
      'org.freedesktop.DBus.Properties.Get',
      'org.kde.StatusNotifierWatcher',
      'RegisteredStatusNotifierItems',
    ],
    { timeout: 5000 },
  );
  return stdout;
}

test('the icon registers with xfce4-panel, shows in it, and returns after the panel restarts', {
  timeout: 120_000,
}, async (t) => {
  const desk = await startDesktop(t);
  const panel = await desk.startPanel();
  const setup = await startRealSetup(t, []);
  const gui = spawnGui(t, ['--config', setup.configPath, '--no-window'], {
    ...desk.env,
    MTT_CONFIG_DIR: setup.dir,
  });
  await gui.waitForOutput(/Dashboard: http/);
  const name = `org.kde.StatusNotifierItem-${gui.child.pid}-1`;
  await until(
    'the panel to list the item',
    async () => (await registeredItems(desk.busAddress)).includes(name),
    20_000,
  );

  // The panel restarts (an update, a crash): the item registers again by itself.
  await panel.stop();
  await until(
    'the panel to be gone',
    async () =>
      !(await registeredItems(desk.busAddress).then(
        () => true,
        () => false,
      )),
    10_000,
  );
  await desk.startPanel();
  await until(
    'the item to register again',
    async () => (await registeredItems(desk.busAddress)).includes(name),
    20_000,
  );
  gui.child.kill('SIGTERM');
  assert.equal((await gui.exited(10_000))[0], 0, gui.stderr());
});
