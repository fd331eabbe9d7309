/**
 * `mtt status` against real processes: a `mtt server` (its admin socket in its state folder), a
 * `mtt client` with a limited tunnel, traffic from 127.0.0.2 and a visitor from 127.0.0.1 that the
 * key's permitfrom refuses; then `mtt status` and `mtt status --json` as a user runs them. Also: the
 * socket's mode, its removal on shutdown, the error when no server answers, a stale socket left by
 * kill -9, and a second server refused the socket a live one holds.
 */
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { askStatus } from '../../src/cli/status-command.js';
import { fingerprint, loadIdentity } from '../../src/identity/index.js';
import type { ServerStatus } from '../../src/server/index.js';
import { runMtt } from '../cli/run-mtt.js';
import { loopbackServerArgs, spawnMttLogged } from '../lib/mtt-process.js';
import { freePort, listen, within } from './harness.js';

/** A state folder with a server key, a client key (comment with an ESC) allowed from 127.0.0.2 only. */
async function setup(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-status-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { MTT_CONFIG_DIR: dir };
  for (const [file, comment] of [
    ['host_key', 'test-server'],
    ['client_key', 'alice'],
  ] as const) {
    const r = await runMtt(['keygen', '-f', join(dir, file), '-C', comment], {
      env: { ...process.env, ...env },
    });
    assert.equal(r.code, 0, r.stderr);
  }
  // Written by hand, as an admin may: the comment holds an escape sequence mtt must not print raw.
  const pub = (await readFile(join(dir, 'client_key.pub'), 'utf8'))
    .trim()
    .replace(/ alice$/, ' alice\x1b[31m@home');
  await writeFile(join(dir, 'allowed_keys'), `permitfrom="127.0.0.2/32" ${pub}\n`, { mode: 0o600 });
  const port = await freePort();
  const serverArgs = loopbackServerArgs(port, '--allowed-keys', join(dir, 'allowed_keys'));
  const clientFingerprint = fingerprint((await loadIdentity(join(dir, 'client_key'))).publicRaw);
  return { dir, env, port, serverArgs, clientFingerprint, socket: join(dir, 'admin.sock') };
}

/** Connects to 127.0.0.1:port from `from`. */
function visit(port: number, from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: from });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Polls the status until `ok` holds (at most `ms`). */
async function statusUntil(
  path: string,
  ok: (s: ServerStatus) => boolean,
  ms = 10_000,
): Promise<ServerStatus> {
  const until = Date.now() + ms;
  for (;;) {
    const s = await askStatus(path);
    if (ok(s)) return s;
    if (Date.now() > until) throw new Error(`status never matched: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('mtt status and --json: the session, a limited tunnel with traffic and rates, a refused visitor', async (t) => {
  const echo = await listen(t, (s) => s.pipe(s));
  const env = await setup(t);
  const server = spawnMttLogged(t, env.serverArgs, env.env);
  const listening = await server.waitLog((l) => l.msg === 'server listening');
  assert.equal(listening.adminSocket, env.socket, 'the default socket is in the state folder');
  const st = await lstat(env.socket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600, 'the admin socket is 0600');

  const remotePort = await freePort();
  const serverKey = (await readFile(join(env.dir, 'host_key.pub'), 'utf8')).trim();
  const config = join(env.dir, 'client.json');
  await writeFile(
    config,
    JSON.stringify({
      server: `127.0.0.1:${env.port}`,
      serverKey,
      identity: 'client_key',
      tunnels: [{ name: 'web', remotePort, localPort: echo.port, maxConnections: 3, rateLimit: '1MB/s' }],
    }),
  );
  const client = spawnMttLogged(t, ['client', '--config', config], env.env);
  await client.waitLog((l) => l.msg === 'tunnel active' && l.tunnel === 'web');

  // A visitor the key's permitfrom refuses, then steady traffic from an allowed one.
  const refused = await visit(remotePort, '127.0.0.1').catch(() => undefined);
  refused?.on('error', () => {});
  await within(
    3000,
    'the refused visitor is closed',
    new Promise((r) => (refused ? refused.once('close', r) : r(0))),
  );
  const visitor = await visit(remotePort, '127.0.0.2');
  let echoed = 0;
  visitor.on('data', (c: Buffer) => {
    echoed += c.length;
  });
  const block = Buffer.alloc(16 * 1024, 7);
  let pumping = true;
  const pump = () => {
    while (pumping && visitor.write(block)) {
      /* until the tunnel pushes back */
    }
    if (pumping) visitor.once('drain', pump);
  };
  pump();
  const during = await statusUntil(env.socket, (s) => {
    const w = s.tunnels.find((x) => x.port === remotePort);
    return w !== undefined && w.rate.in > 0 && w.rate.out > 0;
  });
  assert.equal(during.tunnels[0]!.connections.open, 1, 'the allowed visitor is open');
  pumping = false;
  visitor.destroy();

  const json = await runMtt(['status', '--json', '--socket', env.socket], {
    env: { ...process.env, ...env.env },
  });
  assert.equal(json.code, 0, json.stderr);
  const s = JSON.parse(json.stdout) as ServerStatus;
  assert.equal(s.format, 1);
  assert.equal(s.server.control, `127.0.0.1:${env.port}`);
  assert.equal(s.server.allowedKeys, 1);
  assert.ok(s.session, 'a session');
  assert.equal(s.session.comment, 'alice\x1b[31m@home', 'JSON carries the comment as it is, escaped by JSON');
  assert.ok(json.stdout.includes('alice\\u001b[31m@home'), 'no raw ESC on stdout');
  assert.equal(s.session.fingerprint, env.clientFingerprint);
  assert.match(s.session.peer, /^127\.0\.0\.1:\d+$/);
  assert.ok(Date.parse(s.session.since) <= Date.parse(s.now));
  const web = s.tunnels.find((x) => x.port === remotePort);
  assert.ok(web);
  assert.equal(web.name, 'web');
  assert.equal(web.state, 'open');
  assert.deepEqual(web.limits, { maxConnections: 3, rateLimit: 1_000_000 });
  assert.equal(web.connections.total, 1, 'the refused visitor never became a connection');
  assert.ok(web.bytes.in >= echoed && web.bytes.out > 0, JSON.stringify(web.bytes));
  assert.equal(web.refused.not_permitted, 1);
  const refusal = s.recentRefusals.find((r) => r.kind === 'visitor');
  assert.ok(refusal, JSON.stringify(s.recentRefusals));
  assert.equal(refusal.reason, 'not_permitted');
  assert.match(String(refusal.peer), /^127\.0\.0\.1:\d+$/);
  assert.equal(refusal.tunnel, 'web');
  assert.equal(refusal.port, remotePort);
  assert.ok(Date.parse(refusal.at) <= Date.parse(s.now));

  // The default socket is found without --socket (same state folder).
  const text = await runMtt(['status'], { env: { ...process.env, ...env.env } });
  assert.equal(text.code, 0, text.stderr);
  assert.ok(!text.stdout.includes('\x1b'), 'no raw control character reaches the terminal');
  assert.match(text.stdout, /client\s+alice\\x1b\[31m@home/);
  assert.match(text.stdout, new RegExp(`fingerprint\\s+${env.clientFingerprint.replace(/[+/]/g, '\\$&')}`));
  const header = text.stdout.split('\n').find((l) => l.trimStart().startsWith('NAME'))!;
  const row = text.stdout.split('\n').find((l) => l.trimStart().startsWith('web '))!;
  assert.ok(header && row, text.stdout);
  assert.match(row, new RegExp(`^\\s+web\\s+${remotePort}\\s+open\\s+\\d+\\s+1\\s`));
  // Aligned: each column starts where its heading does.
  for (const h of ['PORT', 'STATE', 'OPEN', 'TOTAL', 'MAX CONN', 'RATE LIMIT', 'REFUSED']) {
    const at = header.indexOf(h);
    assert.ok(row[at - 1] === ' ' && row[at] !== ' ', `the ${h} column lines up:\n${header}\n${row}`);
  }
  assert.equal(row.slice(header.indexOf('MAX CONN')).split(/\s+/)[0], '3');
  assert.equal(
    row
      .slice(header.indexOf('RATE LIMIT'))
      .trim()
      .split(/\s{2,}/)[0],
    '1.0 MB/s',
  );
  assert.equal(row.slice(header.indexOf('REFUSED')).trim(), '1');
  assert.match(text.stdout, /visitor\s+not_permitted\s+127\.0\.0\.1:\d+\s+web:\d+\s+1/);

  // Shutdown removes the socket; then mtt status says no server answers, and exits non-zero.
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
  await assert.rejects(lstat(env.socket), { code: 'ENOENT' });
  const none = await runMtt(['status', '--log-format', 'pretty'], { env: { ...process.env, ...env.env } });
  assert.equal(none.code, 2);
  assert.equal(
    none.stderr,
    `mtt: no mtt server answers on ${env.socket}: start one with mtt server, or pass --socket\n`,
  );
  assert.equal(none.stdout, '');
});

test('a socket left by kill -9 is taken over; a live server keeps its socket from a second one', async (t) => {
  const env = await setup(t);
  const first = spawnMttLogged(t, env.serverArgs, env.env);
  await first.waitLog((l) => l.msg === 'server listening');
  first.child.kill('SIGKILL');
  await first.exited;
  assert.ok((await lstat(env.socket)).isSocket(), 'kill -9 leaves the socket behind');
  const stale = await runMtt(['status', '--log-format', 'pretty'], { env: { ...process.env, ...env.env } });
  assert.equal(stale.code, 2);
  assert.match(stale.stderr, /no mtt server answers on/);

  const second = spawnMttLogged(t, env.serverArgs, env.env);
  await second.waitLog((l) => l.msg === 'removed a stale admin socket' && l.path === env.socket);
  await second.waitLog((l) => l.msg === 'server listening' && l.adminSocket === env.socket);
  assert.equal((await askStatus(env.socket)).server.pid, second.child.pid);

  // A third server asked for the same socket is refused before it starts; with the default one it
  // runs without it and says so.
  const port = await freePort();
  const third = await runMtt(
    [
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--admin-socket',
      env.socket,
      '--log-format',
      'pretty',
    ],
    { env: { ...process.env, ...env.env } },
  );
  assert.equal(third.code, 2);
  assert.match(
    third.stderr,
    /^mtt: another mtt server answers on its admin socket .*admin\.sock; stop it, or pass another --admin-socket\n$/,
  );
  const fourth = spawnMttLogged(t, ['server', '--host', '127.0.0.1', '--port', String(port)], env.env);
  const warned = await fourth.waitLog(
    (l) => l.level === 'warn' && /without an admin socket/.test(String(l.msg)),
  );
  assert.match(String(warned.reason), /another mtt server answers/);
  await fourth.waitLog((l) => l.msg === 'server listening');
  fourth.child.kill('SIGTERM');
  assert.equal(await fourth.exited, 0);
  assert.equal((await askStatus(env.socket)).server.pid, second.child.pid, 'the live server kept its socket');
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
