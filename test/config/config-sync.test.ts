/**
 * The config file and a running client kept in step (issue 11, item 2): a real server, a real client
 * started from its file, real edits of the file while it runs.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { diffTunnels } from '../../src/client/config-edits.js';
import { type MttClient, startClientFromConfig } from '../../src/client/index.js';
import { parseTunnel } from '../../src/config/client-config.js';
import {
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  parseAllowList,
} from '../../src/identity/index.js';
import { startServer } from '../../src/server/index.js';
import { dial, echoServer, freePort, readAll } from '../e2e/harness.js';
import { startRealSetup } from '../gui/real-setup.js';
import { waitForFile } from '../gui/wait.js';

type Started = MttClient & Awaited<ReturnType<typeof startClientFromConfig>>;

async function start(t: TestContext, path: string): Promise<Started> {
  const client = await startClientFromConfig(path);
  t.after(() => client.close());
  await client.waitFor((s) => s.connection.kind === 'connected', 10_000);
  return client;
}

const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

/** Writes the file the way editors do: a new file renamed over the old one. */
async function editFile(path: string, edit: (cfg: Record<string, unknown>) => void): Promise<void> {
  const cfg = await readJson(path);
  edit(cfg);
  await writeFile(`${path}.edit`, JSON.stringify(cfg, null, 2) + '\n');
  await rename(`${path}.edit`, path);
}

async function echoThrough(port: number): Promise<string> {
  const s = await dial(port, { allowHalfOpen: true });
  const got = readAll(s);
  s.end('ping');
  return (await got).toString();
}

test('outside edits apply live and survive a change made in the client; only changed fields are written', {
  timeout: 60_000,
}, async (t) => {
  const echo = await echoServer(t);
  const [webPort, apiPort] = [await freePort(), await freePort()];
  const setup = await startRealSetup(t, [{ name: 'web', remotePort: webPort, localPort: echo.port }]);
  await chmod(setup.configPath, 0o644);
  const client = await start(t, setup.configPath);
  await client.waitFor((s) => s.tunnels[0]?.status === 'active');

  // A person adds a tunnel and changes a setting in the file while the client runs.
  await editFile(setup.configPath, (cfg) => {
    (cfg.tunnels as unknown[]).push({ name: 'api', remotePort: apiPort, localPort: echo.port });
    cfg.reconnectMaxSeconds = 7;
  });
  // The new tunnel opens without a restart, and carries traffic.
  await client.waitFor((s) => s.tunnels.find((x) => x.name === 'api')?.status === 'active', 10_000);
  assert.equal(await echoThrough(apiPort), 'ping');
  await client.sync.flush();

  // Then a change in the client (the dashboard's switch): both edits stay in the file.
  client.tunnels.setEnabled('web', false);
  const text = await waitForFile(setup.configPath, (s) => /"enabled": false/.test(s));
  const cfg = JSON.parse(text) as { tunnels: Record<string, unknown>[]; reconnectMaxSeconds: number };
  assert.equal(cfg.reconnectMaxSeconds, 7);
  assert.deepEqual(cfg.tunnels, [
    { name: 'web', remotePort: webPort, localPort: echo.port, enabled: false },
    { name: 'api', remotePort: apiPort, localPort: echo.port },
  ]);
  // No defaults the user did not write, and the file keeps its mode.
  for (const field of [
    'heartbeatSeconds',
    'heartbeatTimeoutSeconds',
    'dataChannelPool',
    'compress',
    'localHost',
  ]) {
    assert.doesNotMatch(text, new RegExp(`"${field}"`), field);
  }
  assert.equal((await stat(setup.configPath)).mode & 0o777, 0o644);
  // The change made in the client is in the events list, in words.
  assert.ok(client.state.snapshot().events.some((e) => e.tunnel === 'web' && e.message === 'disabled'));
  // The settings change was reported (this client cannot take it live yet, or took it).
  assert.ok(
    client.state
      .snapshot()
      .events.some((e) => /reconnectMaxSeconds|applied the edited config/.test(e.message)),
  );
});

test('a save never overwrites a file that changed since it was read: it merges first', {
  timeout: 60_000,
}, async (t) => {
  const echo = await echoServer(t);
  const [a, b] = [await freePort(), await freePort()];
  const setup = await startRealSetup(t, [{ name: 'a', remotePort: a, localPort: echo.port }]);
  const client = await start(t, setup.configPath);
  // The file changes and, before the watcher has even fired, the client saves a change.
  await editFile(setup.configPath, (cfg) => {
    (cfg.tunnels as unknown[]).push({ name: 'b', remotePort: b, localPort: echo.port, rateLimit: '1MB/s' });
    cfg.$schema = '../schema/client-config.schema.json';
  });
  client.tunnels.update('a', { name: 'a2', remotePort: a, localPort: echo.port });
  await client.sync.flush();
  const cfg = await readJson(setup.configPath);
  assert.equal(cfg.$schema, '../schema/client-config.schema.json');
  assert.deepEqual(cfg.tunnels, [
    { name: 'a2', remotePort: a, localPort: echo.port },
    { name: 'b', remotePort: b, localPort: echo.port, rateLimit: '1MB/s' },
  ]);
  // The client followed the outside edit as well.
  await client.waitFor((s) => s.tunnels.some((x) => x.name === 'b' && x.status === 'active'), 10_000);
  assert.deepEqual(
    client.tunnels.list().map((x) => x.name),
    ['a2', 'b'],
  );
});

test('an invalid edit is reported and not applied; a change meanwhile waits for the fix, then merges', {
  timeout: 60_000,
}, async (t) => {
  const echo = await echoServer(t);
  const [a, b] = [await freePort(), await freePort()];
  const setup = await startRealSetup(t, [
    { name: 'a', remotePort: a, localPort: echo.port },
    { name: 'b', remotePort: b, localPort: echo.port },
  ]);
  const client = await start(t, setup.configPath);
  const broken = (await readFile(setup.configPath, 'utf8')).replace(
    `"remotePort": ${b}`,
    '"remotePort": 99999',
  );
  await writeFile(setup.configPath, broken);
  await client.waitFor(
    (s) => s.events.some((e) => /not valid, so nothing was applied/.test(e.message)),
    5000,
  );
  assert.equal(client.tunnels.list().find((x) => x.name === 'b')?.remotePort, b, 'the running tunnel stays');
  // A change in the client now must not overwrite the half-edited file.
  client.tunnels.setEnabled('a', false);
  await client.sync.flush();
  assert.equal(await readFile(setup.configPath, 'utf8'), broken);
  assert.ok(
    client.state
      .snapshot()
      .events.some((e) => /^not saved: .*public port must be from 1 to 65535/s.test(e.message)),
  );
  // The person fixes the file: it applies, and the waiting change is merged into it.
  await writeFile(setup.configPath, broken.replace('"remotePort": 99999', `"remotePort": ${b + 0}`));
  const fixed = await waitForFile(setup.configPath, (s) => /"enabled": false/.test(s));
  const tunnels = (JSON.parse(fixed) as { tunnels: { name: string; enabled?: boolean }[] }).tunnels;
  assert.deepEqual(
    tunnels.map((x) => [x.name, x.enabled]),
    [
      ['a', false],
      ['b', undefined],
    ],
  );
});

test('tunnels that swap public ports in the file are applied; removing one closes it', {
  timeout: 60_000,
}, async (t) => {
  const echo = await echoServer(t);
  const other = await echoServer(t);
  const [a, b] = [await freePort(), await freePort()];
  const setup = await startRealSetup(t, [
    { name: 'a', remotePort: a, localPort: echo.port },
    { name: 'b', remotePort: b, localPort: other.port },
  ]);
  const client = await start(t, setup.configPath);
  await client.waitFor((s) => s.tunnels.every((x) => x.status === 'active'));
  await editFile(setup.configPath, (cfg) => {
    const [ta, tb] = cfg.tunnels as { remotePort: number }[];
    [ta!.remotePort, tb!.remotePort] = [b, a];
  });
  await client.waitFor(
    (s) =>
      s.tunnels.find((x) => x.name === 'a')?.remotePort === b &&
      s.tunnels.find((x) => x.name === 'b')?.remotePort === a &&
      s.tunnels.every((x) => x.status === 'active'),
    10_000,
  );
  await editFile(setup.configPath, (cfg) => {
    cfg.tunnels = (cfg.tunnels as { name: string }[]).filter((x) => x.name !== 'b');
  });
  await client.waitFor((s) => s.tunnels.length === 1, 5000);
  assert.ok(
    client.state.snapshot().events.some((e) => e.tunnel === 'b' && /removed by an edit/.test(e.message)),
  );
});

test('a config file reached through a symlink is saved through the link', { timeout: 60_000 }, async (t) => {
  const echo = await echoServer(t);
  const a = await freePort();
  const setup = await startRealSetup(t, [{ name: 'a', remotePort: a, localPort: echo.port }]);
  const link = join(setup.dir, 'link.json');
  await symlink(setup.configPath, link);
  const client = await start(t, link);
  client.tunnels.setEnabled('a', false);
  await client.sync.flush();
  assert.ok((await stat(link)).isFile());
  assert.match(await readFile(setup.configPath, 'utf8'), /"enabled": false/);
  const { lstat } = await import('node:fs/promises');
  assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still a link');
});

test('diffTunnels: add, remove, update and rename in place', () => {
  const t = (name: string, remotePort: number) => parseTunnel({ name, remotePort, localPort: 1 });
  assert.deepEqual(diffTunnels([t('a', 1)], [t('a', 1), t('b', 2)]), [{ kind: 'add', tunnel: t('b', 2) }]);
  assert.deepEqual(diffTunnels([t('a', 1), t('b', 2)], [t('b', 2)]), [{ kind: 'remove', name: 'a' }]);
  assert.deepEqual(diffTunnels([t('a', 1), t('b', 2)], [t('c', 1), t('b', 2)]), [
    { kind: 'update', name: 'a', tunnel: t('c', 1) },
  ]);
  assert.deepEqual(diffTunnels([t('a', 1)], [t('a', 3)]), [{ kind: 'update', name: 'a', tunnel: t('a', 3) }]);
  assert.deepEqual(diffTunnels([t('a', 1)], [t('a', 1)]), []);
});

test('the server address and key edited in the file apply live: the client moves to the new server', {
  timeout: 60_000,
}, async (t) => {
  const setup = await startRealSetup(t, []);
  const otherIdentity = generateIdentity('other-server');
  const other = await startServer({
    host: '127.0.0.1',
    port: 0,
    identity: otherIdentity,
    allowList: parseAllowList(setup.clientPublicKeyLine, 'test'),
    publicHost: '127.0.0.1',
    allowPorts: [{ low: 1024, high: 65535 }],
  });
  t.after(() => other.close());
  const client = await start(t, setup.configPath);
  assert.equal(client.state.snapshot().server.fingerprint, setup.serverFingerprint);
  await editFile(setup.configPath, (cfg) => {
    cfg.server = `127.0.0.1:${other.address.port}`;
    cfg.serverKey = formatPublicKeyLine(otherIdentity.publicRaw);
  });
  const moved = await client.waitFor(
    (s) =>
      s.connection.kind === 'connected' &&
      s.connection.serverFingerprint === fingerprint(otherIdentity.publicRaw),
    15_000,
  );
  assert.equal(moved.server.address, `127.0.0.1:${other.address.port}`);
});
