/**
 * Revocation is by key, not by session (issue 9): removing a key or narrowing its permitlisten ends
 * what the new list does not allow — including connections still relayed from an earlier session of
 * that key — within a second of the file change; a broken edit fails closed for the keys it removed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  type Identity,
} from '../../src/identity/index.js';
import {
  captureLog,
  dial,
  echoServer,
  freePort,
  listen,
  startPair,
  tunnelsActive,
  within,
} from './harness.js';

/** A target that sends a byte every 20 ms until the connection closes. */
async function ticker(t: TestContext) {
  return listen(t, (s) => {
    const timer = setInterval(() => s.write('.'), 20);
    s.on('close', () => clearInterval(timer));
  });
}

/** Counts the bytes a socket receives; resolves `ended` with when it closed. */
function watch(s: Socket) {
  const w = { bytes: 0, ended: undefined as Promise<number> | undefined };
  s.on('data', (c: Buffer) => {
    w.bytes += c.length;
  });
  s.on('error', () => {});
  w.ended = new Promise((r) => s.on('close', () => r(Date.now())));
  return w as { bytes: number; ended: Promise<number> };
}

async function allowFile(lines: string[], t?: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-revoke-'));
  t?.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'allowed_keys');
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
  return path;
}

const line = (id: Identity, options = '') => `${options}${formatPublicKeyLine(id.publicRaw, 'k')}`;

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('removing a key ends the connections of its earlier sessions too, within a second', async (t) => {
  const target = await ticker(t);
  const remotePort = await freePort();
  const me = generateIdentity('me');
  const other = generateIdentity('other');
  const path = await allowFile([line(me), line(other)], t);
  const pair = await startPair(t, { server: { allowedKeysPath: path }, client: { identity: me } });
  const { proxy, client } = await pair.viaProxy({
    tunnels: [{ name: 'tick', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(client);
  const first = pair.server.sessions.current!;
  const external = await dial(remotePort);
  const w = watch(external);
  await until(() => w.bytes > 5, 3000, 'ticks flow');
  // The control link breaks; the client logs in again (a new session); the connection goes on.
  proxy.cut(0);
  await until(
    () => pair.server.sessions.current !== undefined && pair.server.sessions.current !== first,
    10_000,
    'a new session',
  );
  await tunnelsActive(client);
  const before = w.bytes;
  await until(() => w.bytes > before + 5, 3000, 'the old connection still flows');
  const changed = Date.now();
  await writeFile(path, `${line(other)}\n`, { mode: 0o600 });
  const endedAt = await within(3000, "the earlier session's connection ends", w.ended);
  const took = endedAt - changed;
  assert.ok(took < 1000, `the earlier session's connection ended ${took} ms after the file changed`);
  assert.equal(pair.server.sessions.current, undefined);
});

test("narrowing a key's permitlisten closes the tunnels outside it and their connections, within a second", async (t) => {
  const target = await ticker(t);
  const echo = await echoServer(t);
  const keep = await freePort();
  const lose = await freePort();
  const outside = await freePort();
  const me = generateIdentity('me');
  const path = await allowFile([line(me, `permitlisten="${keep},${lose},${outside}" `)], t);
  const pair = await startPair(t, {
    server: { allowedKeysPath: path },
    client: { identity: me },
    tunnels: [
      { name: 'keep', remotePort: keep, localHost: '127.0.0.1', localPort: echo.port },
      { name: 'lose', remotePort: lose, localHost: '127.0.0.1', localPort: target.port },
    ],
  });
  await tunnelsActive(pair.client);
  const external = await dial(lose);
  const w = watch(external);
  await until(() => w.bytes > 3, 3000, 'ticks flow');
  const changed = Date.now();
  await writeFile(path, `${line(me, `permitlisten="${keep}" `)}\n`, { mode: 0o600 });
  const endedAt = await within(3000, 'the connection on the narrowed port ends', w.ended);
  assert.ok(
    endedAt - changed < 1000,
    `the connection on the narrowed port ended after ${endedAt - changed} ms`,
  );
  const snap = await pair.client.waitFor(
    (s) => s.tunnels.some((x) => x.name === 'lose' && x.status === 'error'),
    2000,
  );
  const lost = snap.tunnels.find((x) => x.name === 'lose')!;
  assert.equal(lost.errorReason, 'revoked');
  assert.ok(Date.now() - changed < 2000);
  // The port is really closed, and a port outside the new range does not open either.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: lose });
      s.on('connect', () => resolve(s.destroy()));
      s.on('error', reject);
    }),
    (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
  );
  pair.client.tunnels.add({
    name: 'outside',
    remotePort: outside,
    localHost: '127.0.0.1',
    localPort: echo.port,
  });
  const after = await pair.client.waitFor(
    (s) => s.tunnels.some((x) => x.name === 'outside' && x.status === 'error'),
    3000,
  );
  assert.equal(after.tunnels.find((x) => x.name === 'outside')!.errorReason, 'port_not_allowed');
  // The tunnel inside the range still serves.
  const ok = await dial(keep, { allowHalfOpen: true });
  const got: Buffer[] = [];
  ok.on('data', (c: Buffer) => got.push(c));
  ok.end('still here');
  await new Promise((r) => ok.on('close', r));
  assert.equal(Buffer.concat(got).toString(), 'still here');
});

test('a broken edit fails closed for the key whose line it broke, and says so; other keys stay', async (t) => {
  const me = generateIdentity('me');
  const other = generateIdentity('other');
  const cap = captureLog();
  const path = await allowFile([line(me), line(other)], t);
  const pair = await startPair(t, {
    server: { allowedKeysPath: path, log: cap.log },
    client: { identity: me },
  });
  await pair.client.waitFor((s) => s.connection.kind === 'connected');
  // A typo in the other key's line: this client keeps its session.
  await writeFile(path, `${line(me)}\nssh-ed25519 AAAAbroken other\n`, { mode: 0o600 });
  const err = await cap.waitFor(
    (l) => l.msg === 'allow-list has an error; failing closed until it is fixed',
    3000,
  );
  assert.ok(Array.isArray(err.refused) && err.refused.length === 1, 'the other key is refused');
  assert.equal(pair.server.sessions.current?.closed, false, 'this key is still allowed');
  // A typo in this key's own line: its session ends within a second.
  const changed = Date.now();
  await writeFile(
    path,
    `permitlisten="nonsense" ${formatPublicKeyLine(me.publicRaw, 'k')}\n${line(other)}\n`,
    {
      mode: 0o600,
    },
  );
  await pair.client.waitFor((s) => s.connection.kind !== 'connected', 3000);
  assert.ok(Date.now() - changed < 1500, `ended after ${Date.now() - changed} ms`);
  assert.equal(pair.server.sessions.current, undefined);
});

test('an edit that removes a key and breaks another line: the removed key is out at once and stays out until the file parses', async (t) => {
  const me = generateIdentity('me');
  const other = generateIdentity('other');
  const target = await ticker(t);
  const remotePort = await freePort();
  const cap = captureLog();
  const path = await allowFile([line(me), line(other)], t);
  const pair = await startPair(t, {
    server: { allowedKeysPath: path, log: cap.log },
    client: { identity: me, reconnectMaxMs: 200 },
    tunnels: [{ name: 't', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(pair.client);
  const w = watch(await dial(remotePort));
  // This key's line goes, and the other key's line gets a typo: the file no longer parses.
  const changed = Date.now();
  await writeFile(path, `${line(other).replace('ssh-ed25519 AAAA', 'ssh-ed25519 AAAx')}\n`, { mode: 0o600 });
  const err = await cap.waitFor(
    (l) => l.msg === 'allow-list has an error; failing closed until it is fixed',
    3000,
  );
  const ended = await within(3000, 'the relayed connection of the removed key ends', w.ended);
  assert.ok(ended - changed < 1500, `the relayed connection ended ${ended - changed} ms after the edit`);
  assert.ok(Array.isArray(err.refused), 'the error names the keys it refuses');
  assert.ok((err.refused as string[]).includes(fingerprint(me.publicRaw)), 'the removed key is refused');
  // While the file stays broken, this key's new logins are refused.
  const rejected = await pair.client.waitFor((s) => s.connection.kind === 'rejected', 3000);
  assert.equal(rejected.connection.kind === 'rejected' && rejected.connection.reason, 'unknown_key');
  assert.equal(pair.server.sessions.current, undefined);
  // Fixed (the key is back): it gets in again.
  await writeFile(path, `${line(me)}\n${line(other)}\n`, { mode: 0o600 });
  await pair.client.waitFor((s) => s.connection.kind === 'connected', 5000);
});
