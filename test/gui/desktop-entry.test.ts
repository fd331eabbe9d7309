import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  autostartState,
  desktopEntry,
  desktopPaths,
  installLauncher,
  launcherInstalled,
  quoteExecArg,
  removeLauncher,
  setAutostart,
} from '../../src/gui/desktop/desktop-entry.js';

test('Exec arguments are quoted as the desktop entry spec says', () => {
  assert.equal(quoteExecArg('/usr/bin/node'), '/usr/bin/node');
  assert.equal(quoteExecArg('/home/a b/c.json'), '"/home/a b/c.json"');
  assert.equal(quoteExecArg('/x/$HOME`"\\.json'), '"/x/\\\\$HOME\\\\`\\\\"\\\\\\\\.json"');
  assert.equal(quoteExecArg('/x/100%.json'), '"/x/100%%.json"');
  const entry = desktopEntry('/home/a b/client.json', {
    autostart: true,
    argv: ['/usr/bin/node', '/opt/mtt/main.js'],
  });
  assert.match(
    entry,
    /^Exec=\/usr\/bin\/node \/opt\/mtt\/main\.js gui --config "\/home\/a b\/client\.json"$/m,
  );
  assert.match(entry, /^Icon=minitcptunnel$/m);
  assert.throws(() => desktopEntry('/x\ny', { autostart: false }), /control character/);
});

test('start at login and the launcher: off by default, on and off again, in the XDG folders', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'mtt-xdg-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_DATA_HOME: join(home, 'data') };
  const p = desktopPaths(env);
  assert.equal(p.autostart, join(home, 'cfg', 'autostart', 'minitcptunnel.desktop'));
  assert.deepEqual(await autostartState(env), { enabled: false });
  await setAutostart(true, '/srv/client.json', env);
  const state = await autostartState(env);
  assert.equal(state.enabled, true);
  assert.match(state.exec ?? '', / gui --config \/srv\/client\.json$/);
  assert.equal((await stat(p.autostart)).mode & 0o777, 0o644);
  await setAutostart(false, '/srv/client.json', env);
  assert.deepEqual(await autostartState(env), { enabled: false });
  assert.equal(await launcherInstalled(env), false);
  await installLauncher('/srv/client.json', env);
  assert.equal(await launcherInstalled(env), true);
  assert.match(await readFile(p.icon, 'utf8'), /<svg/);
  await removeLauncher(env);
  assert.equal(await launcherInstalled(env), false);
});
