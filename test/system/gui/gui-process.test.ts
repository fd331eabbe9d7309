/**
 * `mtt gui` as a real process on a private session bus: a test tray host reads the item and its
 * menu, clicks a tunnel (which disables it in the client and the config file) and clicks Quit (the
 * process exits cleanly).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DashboardUpdate } from '../../../src/gui/dashboard-types.js';
import type { Variant } from '../../../src/gui/dbus/marshal.js';
import { rawRequest, SseReader } from '../../gui/http-helpers.js';
import { freePort, startRealSetup } from '../../gui/real-setup.js';
import { waitForFile } from '../../gui/wait.js';
import { startPrivateBus } from './lib/private-bus.js';
import { findEntry, TestTrayHost } from './lib/tray-host.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

test('mtt gui: the tray shows state and menu, a click disables a tunnel, Quit exits cleanly', {
  timeout: 120_000,
}, async (t) => {
  const remotePort = await freePort();
  const setup = await startRealSetup(t, []);
  // The tunnel is in the config from the start; its target is the real local service.
  const cfg = JSON.parse(await readFile(setup.configPath, 'utf8')) as Record<string, unknown>;
  cfg.tunnels = [{ name: 'web', remotePort, localHost: '127.0.0.1', localPort: setup.service.port }];
  await writeFile(setup.configPath, JSON.stringify(cfg, null, 2));

  // A stand-in browser that records how it was started and stays up until it is closed.
  const argsFile = join(setup.dir, 'browser-args.txt');
  const fakeBrowser = join(setup.dir, 'fake-browser');
  await writeFile(
    fakeBrowser,
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}.tmp'\nmv '${argsFile}.tmp' '${argsFile}'\nexec sleep 60\n`,
  );
  await chmod(fakeBrowser, 0o755);

  const bus = await startPrivateBus();
  t.after(() => bus.close());
  const host = await TestTrayHost.start(bus.address);
  t.after(() => host.close());

  const child = spawn(process.execPath, [CLI, 'gui', '--config', setup.configPath, '--no-window'], {
    env: {
      ...process.env,
      DBUS_SESSION_BUS_ADDRESS: bus.address,
      MTT_CONFIG_DIR: setup.dir,
      MTT_BROWSER: fakeBrowser,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no dashboard URL printed in 15 s; stderr:\n${stderr}`)),
      15_000,
    );
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /Dashboard: (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const dashUrl = new URL(url);
  const token = dashUrl.searchParams.get('token')!;
  const sse = await SseReader.open(Number(dashUrl.port), { Authorization: `Bearer ${token}` });
  t.after(() => sse.close());
  const webOf = (u: DashboardUpdate) => u.snapshot.tunnels.find((x) => x.name === 'web');
  await sse.waitFor<DashboardUpdate>('state', (u) => webOf(u)?.status === 'active', 15_000);

  const item = await host.waitForItem(15_000);
  assert.match(item.service, /^org\.kde\.StatusNotifierItem-\d+-1$/);
  // The item was registered by the GUI process's own connection.
  assert.notEqual(item.sender, host.conn.uniqueName);

  // The tray catches up with the state within its refresh interval: wait for the connected title.
  let props = await host.properties(item);
  if (props.get('Title')?.value !== 'MiniTCPTunnel: connected') {
    await host.waitForSignal((m) => m.member === 'NewTitle', 0, 10_000);
    props = await host.properties(item);
  }
  assert.equal(props.get('Title')?.value, 'MiniTCPTunnel: connected');
  assert.equal(props.get('Status')?.value, 'Active');
  const pixmaps = props.get('IconPixmap')?.value as [number, number, Buffer][];
  assert.ok(pixmaps.length > 0 && pixmaps.every(([w, h, d]) => d.length === w * h * 4));

  const { root } = await host.menu(item);
  const web = findEntry(root, 'web');
  assert.ok(web, 'a menu item for the tunnel');
  assert.equal((web.props.get('toggle-state') as Variant | undefined)?.value, 1);
  assert.ok(findEntry(root, 'Show window'));
  const quit = findEntry(root, 'Quit');
  assert.ok(quit);

  // Clicking the tunnel's item disables it in the client's state and in the config file.
  const signalsBefore = host.signals.length;
  await host.click(item, web.id);
  const off = await sse.waitFor<DashboardUpdate>('state', (u) => webOf(u)?.enabled === false, 10_000);
  assert.equal(webOf(off)?.status, 'disabled');
  await waitForFile(setup.configPath, (text) => /"enabled": false/.test(text), 10_000);
  await host.waitForSignal((m) => m.member === 'LayoutUpdated', signalsBefore, 10_000);
  const after = await host.menu(item);
  assert.equal(findEntry(after.root, 'web')?.props.get('toggle-state')?.value, 0);

  // Show window starts the browser in --app mode with its own profile and a one-time login link.
  let since = host.signals.length;
  await host.click(item, findEntry(after.root, 'Show window')!.id);
  const args = (await waitForFile(argsFile, (text) => text.includes('--app='), 10_000)).split('\n');
  const app = new URL(args.find((a) => a.startsWith('--app='))!.slice('--app='.length));
  assert.equal(app.origin, dashUrl.origin);
  assert.notEqual(app.searchParams.get('token'), token, 'the window never gets the session token');
  assert.ok(
    args.some((a) => a.startsWith(`--user-data-dir=${join(setup.dir, 'gui-profile')}/`)),
    args.join(' '),
  );
  assert.ok(args.includes('--remote-debugging-pipe'), 'the window is driven over a private pipe, not a port');
  const login = await rawRequest(Number(dashUrl.port), { path: app.pathname + app.search });
  assert.equal(login.status, 303);
  await host.waitForSignal((m) => m.member === 'LayoutUpdated', since, 10_000);
  const shown = await host.menu(item);
  const hide = findEntry(shown.root, 'Close window');
  assert.ok(hide, 'the menu offers Close window while the window is open');
  // Hide closes the window; the client keeps running in the tray.
  since = host.signals.length;
  await host.click(item, hide.id);
  await host.waitForSignal((m) => m.member === 'LayoutUpdated', since, 10_000);
  const after2 = (await host.menu(item)).root;
  assert.ok(findEntry(after2, 'Show window'));
  assert.equal(findEntry(after2, 'Close window'), undefined);
  assert.equal(
    (
      await rawRequest(Number(dashUrl.port), {
        path: '/api/state',
        headers: { Authorization: `Bearer ${token}` },
      })
    ).status,
    200,
  );

  // Quit ends the process cleanly; its bus name goes away.
  const gone = host.waitForSignal(
    (m) => m.member === 'NameOwnerChanged' && m.body[0] === item.service && m.body[2] === '',
    0,
    15_000,
  );
  await host.click(item, quit.id);
  let timer: NodeJS.Timeout | undefined;
  const [code, signal] = await Promise.race([
    exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`gui did not exit in 15 s; stderr:\n${stderr}`)), 15_000);
    }),
  ]);
  clearTimeout(timer);
  assert.equal(signal, null);
  assert.equal(code, 0, stderr);
  await gone;
});
