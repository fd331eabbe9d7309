/**
 * `mtt gui` as a real process (issue 11, broken items 1 and 3): Quit ends every connection and the
 * process promptly, asking first in the tray when connections are open; one instance per config file,
 * with a lock that a crash cannot leave stale.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { DashboardUpdate } from '../../../src/gui/dashboard-types.js';
import { dial, freePort } from '../../e2e/harness.js';
import { SseReader } from '../../gui/http-helpers.js';
import { startRealSetup } from '../../gui/real-setup.js';
import { spawnGui } from './lib/gui-process.js';
import { startPrivateBus } from './lib/private-bus.js';
import { findEntry, TestTrayHost } from './lib/tray-host.js';

/** A local service that sends 16 KiB every 20 ms for as long as the visitor stays: a long download. */
async function endlessService(t: TestContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    const timer = setInterval(() => s.write(Buffer.alloc(16 * 1024, 0x61)), 20);
    s.on('close', () => {
      clearInterval(timer);
      sockets.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

async function runtimeDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-run-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A real server and `mtt gui --no-window` with one tunnel `dl` to an endless download, on the given
 * session bus; returns once the dashboard's event stream reports the tunnel active.
 */
async function guiWithDownloadTunnel(t: TestContext, busAddress: string) {
  const remotePort = await freePort();
  const service = await endlessService(t);
  const setup = await startRealSetup(t, [{ name: 'dl', remotePort, localPort: service }]);
  const gui = spawnGui(t, ['--config', setup.configPath, '--no-window'], {
    ...process.env,
    DBUS_SESSION_BUS_ADDRESS: busAddress,
    MTT_CONFIG_DIR: setup.dir,
    XDG_RUNTIME_DIR: await runtimeDir(t),
  });
  const url = new URL((await gui.waitForOutput(/Dashboard: (\S+)/))[1]!);
  const sse = await SseReader.open(Number(url.port), {
    Authorization: `Bearer ${url.searchParams.get('token')}`,
  });
  t.after(() => sse.close());
  await sse.waitFor<DashboardUpdate>('state', (u) => u.snapshot.tunnels[0]?.status === 'active', 15_000);
  return { remotePort, gui, sse };
}

test('Quit from the tray asks first while a download runs, then ends it and the process at once', {
  timeout: 90_000,
}, async (t) => {
  const bus = await startPrivateBus();
  t.after(() => bus.close());
  const host = await TestTrayHost.start(bus.address);
  t.after(() => host.close());
  const { remotePort, gui, sse } = await guiWithDownloadTunnel(t, bus.address);

  // A visitor downloads through the tunnel.
  const visitor = await dial(remotePort);
  let received = 0;
  visitor.on('data', (c: Buffer) => {
    received += c.length;
  });
  const visitorClosed = new Promise<number>((r) => visitor.once('close', () => r(Date.now())));
  visitor.on('error', () => {});
  await sse.waitFor<DashboardUpdate>('state', (u) => u.snapshot.tunnels[0]?.activeConnections === 1, 10_000);

  // The tray's Quit now says what it ends and needs a second click.
  const item = await host.waitForItem(15_000);
  const hasConfirm = async () => findEntry((await host.menu(item)).root, /^End it and quit$/) !== undefined;
  for (let i = 0; i < 50 && !(await hasConfirm()); i++) await new Promise((r) => setTimeout(r, 100));
  const { root } = await host.menu(item);
  const quit = findEntry(root, 'Quit…');
  assert.ok(quit, 'Quit is a submenu while a connection is open');
  assert.ok(findEntry(quit, '1 connection open'));
  await host.click(item, quit.id);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(gui.child.exitCode, null, 'clicking the submenu itself does not quit');
  const before = received;
  assert.ok(before > 0, 'the download was flowing');

  const clicked = Date.now();
  await host.click(item, findEntry(quit, 'End it and quit')!.id);
  const [code, signal] = await gui.exited(10_000);
  const exitedAt = Date.now();
  assert.equal(signal, null);
  assert.equal(code, 0, gui.stderr());
  const closedAt = await Promise.race([
    visitorClosed,
    new Promise<number>((_, reject) => setTimeout(() => reject(new Error('the download still runs')), 5000)),
  ]);
  // Both within a few seconds of the click (bounded, not timed: the bound only rules out "never").
  assert.ok(exitedAt - clicked < 10_000 && closedAt - clicked < 10_000);
});

test('SIGTERM with an open connection ends it and the process', { timeout: 60_000 }, async (t) => {
  const { remotePort, gui, sse } = await guiWithDownloadTunnel(t, 'unix:path=/nonexistent/bus');
  const visitor = await dial(remotePort);
  visitor.on('error', () => {});
  visitor.resume();
  const visitorClosed = new Promise<void>((r) => visitor.once('close', () => r()));
  await sse.waitFor<DashboardUpdate>('state', (u) => u.snapshot.tunnels[0]?.activeConnections === 1, 10_000);
  gui.child.kill('SIGTERM');
  const [code] = await gui.exited(10_000);
  assert.equal(code, 0, gui.stderr());
  await Promise.race([
    visitorClosed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('the connection outlived mtt')), 5000)),
  ]);
});

test('a second mtt gui on the same config hands over to the first and exits; a crashed one leaves no lock', {
  timeout: 90_000,
}, async (t) => {
  const setup = await startRealSetup(t, []);
  const env = {
    ...process.env,
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus',
    MTT_CONFIG_DIR: setup.dir,
    XDG_RUNTIME_DIR: await runtimeDir(t),
  };
  const first = spawnGui(t, ['--config', setup.configPath, '--no-window', '--log-format', 'json'], env);
  const url = new URL((await first.waitForOutput(/Dashboard: (\S+)/))[1]!);
  const sse = await SseReader.open(Number(url.port), {
    Authorization: `Bearer ${url.searchParams.get('token')}`,
  });
  t.after(() => sse.close());
  await sse.waitFor<DashboardUpdate>('state', (u) => u.snapshot.connection.kind === 'connected', 15_000);

  const second = spawnGui(t, ['--config', setup.configPath, '--no-window'], env);
  const [code] = await second.exited(15_000);
  assert.equal(code, 0, second.stderr());
  assert.match(second.stdout(), /already running .*\(pid \d+\).*asked it to show its window/);
  assert.doesNotMatch(second.stdout(), /Dashboard: http/, 'the second one started no dashboard');
  // The first one heard it, and was never pushed off the server.
  for (let i = 0; i < 50 && !/another mtt gui was started/.test(first.stderr()); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(first.stderr(), /another mtt gui was started/);
  // The newest state the page has, not the first one it was sent (that one may say 'connecting').
  const now = sse.latest<DashboardUpdate>('state');
  assert.ok(now, 'the page got a state');
  assert.equal(now.snapshot.connection.kind, 'connected');
  assert.ok(
    !now.snapshot.events.some((e) => /in_use|disconnected|lost/.test(e.message)),
    JSON.stringify(now.snapshot.events),
  );
  sse.close();

  // A crash (SIGKILL: no cleanup at all) must not leave a lock that stops the next start.
  first.child.kill('SIGKILL');
  await first.exited(10_000);
  const third = spawnGui(t, ['--config', setup.configPath, '--no-window'], env);
  await third.waitForOutput(/Dashboard: http/, 20_000);
  third.child.kill('SIGTERM');
  assert.equal((await third.exited(10_000))[0], 0, third.stderr());
});
