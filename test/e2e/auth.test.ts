import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { formatPublicKeyLine, generateIdentity, parseAllowList } from '../../src/identity/index.js';
import { dial, echoServer, freePort, readAll, startPair, tunnelsActive } from './harness.js';

test('an unknown key is refused, and the client shows why', async (t) => {
  const { startClient, server } = await startPair(t);
  const stranger = startClient({ identity: generateIdentity('stranger') });
  const snap = await stranger.waitFor((s) => s.connection.kind === 'rejected');
  assert.equal(snap.connection.kind === 'rejected' && snap.connection.reason, 'unknown_key');
  assert.ok(
    snap.connection.kind === 'rejected' && snap.connection.nextTryAt! > Date.now() - 1000,
    'it keeps retrying',
  );
  assert.ok((server.metrics.authFailures.get('unknown_key') ?? 0) >= 1);
});

test('a second client with another allowed key gets busy', async (t) => {
  const first = generateIdentity('first');
  const second = generateIdentity('second');
  const pair = await startPair(t, {
    server: {
      allowList: parseAllowList(
        `${formatPublicKeyLine(first.publicRaw, 'first')}\n${formatPublicKeyLine(second.publicRaw, 'second')}`,
        'test',
      ),
    },
    client: { identity: first },
  });
  await pair.client.waitFor((s) => s.connection.kind === 'connected');
  const other = pair.startClient({ identity: second });
  const snap = await other.waitFor((s) => s.connection.kind === 'rejected');
  assert.equal(snap.connection.kind === 'rejected' && snap.connection.reason, 'busy');
  assert.match(snap.connection.kind === 'rejected' ? snap.connection.message : '', /another client/);
  // The first client was not disturbed.
  assert.equal(pair.client.state.snapshot().connection.kind, 'connected');
  assert.ok((pair.server.metrics.authFailures.get('busy') ?? 0) >= 1);
});

test('the same key logging in again replaces its stale session at once, ports included', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const tunnels = [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }];
  const pair = await startPair(t);
  // The first login goes through a link that then freezes: the server still believes in it.
  const { proxy, client: stale } = await pair.viaProxy({
    tunnels,
    heartbeatMs: 60_000,
    heartbeatTimeoutMs: 60_000,
  });
  await tunnelsActive(stale);
  const staleSession = pair.server.sessions.current!;
  proxy.blackhole();
  await stale.close();
  // The same key comes back directly: no "port already in use", no waiting for a timeout.
  const started = Date.now();
  const fresh = pair.startClient({ tunnels });
  await tunnelsActive(fresh, 5000);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  assert.ok(staleSession.closed);
  assert.notEqual(pair.server.sessions.current, staleSession);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const got = readAll(s);
  s.end('ping');
  assert.equal((await got).toString(), 'ping');
});

test('removing the key from the allow-list file ends the session, live', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-allow-'));
  const path = join(dir, 'allowed_keys');
  const clientIdentity = generateIdentity('c');
  const keep = generateIdentity('someone-else');
  await writeFile(
    path,
    `# test list\n${formatPublicKeyLine(clientIdentity.publicRaw, 'c')}\n${formatPublicKeyLine(keep.publicRaw, 'k')}\n`,
    { mode: 0o600 },
  );
  const pair = await startPair(t, {
    server: { allowedKeysPath: path },
    client: { identity: clientIdentity },
  });
  await pair.client.waitFor((s) => s.connection.kind === 'connected');
  assert.ok(pair.server.sessions.current);
  await writeFile(path, `# test list\n${formatPublicKeyLine(keep.publicRaw, 'k')}\n`, { mode: 0o600 });
  const snap = await pair.client.waitFor((s) => s.connection.kind === 'rejected', 5000);
  assert.equal(snap.connection.kind === 'rejected' && snap.connection.reason, 'unknown_key');
  assert.ok(snap.events.some((e) => e.message.includes('revoked')));
  assert.equal(pair.server.sessions.current, undefined);
});

test('a port the server does not allow, and a port in use, show as tunnel errors', async (t) => {
  const echo = await echoServer(t);
  const busy = await echoServer(t); // holds a port on 127.0.0.1
  const allowed = await freePort();
  const { client } = await startPair(t, {
    server: {
      allowPorts: [
        { low: allowed, high: allowed },
        { low: busy.port, high: busy.port },
      ],
    },
    tunnels: [
      { name: 'ok', remotePort: allowed, localHost: '127.0.0.1', localPort: echo.port },
      {
        name: 'forbidden',
        remotePort: allowed === 1 ? 2 : allowed - 1,
        localHost: '127.0.0.1',
        localPort: echo.port,
      },
      { name: 'taken', remotePort: busy.port, localHost: '127.0.0.1', localPort: echo.port },
    ],
  });
  const snap = await client.waitFor((s) => s.tunnels.every((x) => x.status !== 'opening'));
  const by = Object.fromEntries(snap.tunnels.map((x) => [x.name, x]));
  assert.equal(by.ok!.status, 'active');
  assert.equal(by.forbidden!.status, 'error');
  assert.match(by.forbidden!.error!, /not allowed/);
  assert.equal(by.taken!.status, 'error');
  assert.match(by.taken!.error!, /in use/);
  assert.ok(snap.events.some((e) => e.tunnel === 'taken' && e.level === 'error'));
});

test('per-key permitlisten limits the ports a key may open', async (t) => {
  const echo = await echoServer(t);
  const mine = await freePort();
  const clientIdentity = generateIdentity('limited');
  const { client } = await startPair(t, {
    server: {
      allowList: parseAllowList(
        `permitlisten="${mine}" ${formatPublicKeyLine(clientIdentity.publicRaw, 'l')}`,
        'test',
      ),
    },
    client: { identity: clientIdentity },
    tunnels: [
      { name: 'mine', remotePort: mine, localHost: '127.0.0.1', localPort: echo.port },
      {
        name: 'other',
        remotePort: mine === 65535 ? 65534 : mine + 1,
        localHost: '127.0.0.1',
        localPort: echo.port,
      },
    ],
  });
  const snap = await client.waitFor((s) => s.tunnels.every((x) => x.status !== 'opening'));
  assert.deepEqual(
    snap.tunnels.map((x) => x.status),
    ['active', 'error'],
  );
});

test('tunnels added, disabled and removed at run time apply live', async (t) => {
  const echo = await echoServer(t);
  const port = await freePort();
  const { client } = await startPair(t);
  await client.waitFor((s) => s.connection.kind === 'connected');
  client.tunnels.add({ name: 'live', remotePort: port, localHost: '127.0.0.1', localPort: echo.port });
  await tunnelsActive(client);
  const s = await dial(port, { allowHalfOpen: true });
  const got = readAll(s);
  s.end('x');
  assert.equal((await got).toString(), 'x');
  client.tunnels.setEnabled('live', false);
  await client.waitFor((x) => x.tunnels[0]!.status === 'disabled');
  // The public port closes (a connection racing the close may still be reset).
  let refused = false;
  for (let i = 0; i < 50 && !refused; i++) {
    try {
      (await dial(port)).destroy();
      await new Promise((r) => setTimeout(r, 20));
    } catch (err) {
      refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    }
  }
  assert.ok(refused, 'the public port was closed');
  client.tunnels.setEnabled('live', true);
  await tunnelsActive(client);
  assert.throws(
    () => client.tunnels.add({ name: 'live', remotePort: port + 1, localHost: '127.0.0.1', localPort: 1 }),
    /name "live" is already used/,
  );
  assert.throws(
    () => client.tunnels.add({ name: 'bad', remotePort: 70000, localHost: '127.0.0.1', localPort: 1 }),
    (e: unknown) => e instanceof ConfigError && e.field === 'remotePort' && /public port/.test(e.message),
  );
  client.tunnels.remove('live');
  assert.equal(client.state.snapshot().tunnels.length, 0);
});

test('without a pinned key the client trusts the first server key, records it, and refuses a changed one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-tofu-'));
  const knownServersPath = join(dir, 'known_servers');
  const clientIdentity = generateIdentity('c');
  const allow = parseAllowList(formatPublicKeyLine(clientIdentity.publicRaw), 'test');
  const first = await startPair(t, { server: { allowList: allow }, client: { identity: clientIdentity } });
  await first.client.close();
  const port = first.server.address.port;
  const tofu = first.startClient({ serverKey: undefined, knownServersPath });
  const snap = await tofu.waitFor((s) => s.connection.kind === 'connected');
  assert.ok(
    snap.events.some((e) => e.message.includes('trusted server key') && e.message.includes('first use')),
  );
  const recorded = await readFile(knownServersPath, 'utf8');
  assert.match(recorded, new RegExp(`^127\\.0\\.0\\.1:${port} ssh-ed25519 `, 'm'));
  await tofu.close();
  await first.server.close();
  // Another server (another key) takes over the same address: refused, like SSH.
  const impostor = await startPair(t, {
    server: { port, allowList: allow },
    client: { identity: clientIdentity },
  });
  await impostor.client.close();
  const again = impostor.startClient({ port, serverKey: undefined, knownServersPath });
  const refused = await again.waitFor((s) => s.connection.kind === 'rejected');
  assert.equal(refused.connection.kind === 'rejected' && refused.connection.reason, 'server_key_mismatch');
  assert.equal(await readFile(knownServersPath, 'utf8'), recorded, 'the recorded key was not replaced');
});

test('a first start with the server down keeps retrying, then connects when the server comes', async (t) => {
  const port = await freePort();
  const pair = await startPair(t);
  await pair.client.close();
  await pair.server.close();
  const client = pair.startClient({ port, reconnectMinMs: 20, reconnectMaxMs: 100 });
  const waiting = await client.waitFor(
    (s) => s.connection.kind === 'reconnecting' && s.connection.attempt >= 3,
  );
  assert.match(
    waiting.connection.kind === 'reconnecting' ? waiting.connection.lastError : '',
    /connection refused/,
  );
  const later = await startPair(t, {
    server: {
      port,
      identity: pair.serverIdentity,
      allowList: parseAllowList(formatPublicKeyLine(pair.clientIdentity.publicRaw), 'test'),
    },
  });
  await later.client.close();
  await client.waitFor((s) => s.connection.kind === 'connected');
});
