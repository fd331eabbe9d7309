/**
 * Sessions under real faults (issue 8), in network namespaces: the client in its own namespace behind
 * a veth pair, the server on the other side, both as real processes. A 20 s partition during
 * transfers, kill -9 of the server, SIGSTOP of the client, a late server start, two clients with one
 * key, a public port taken then freed. Each asserts the recovery times and the sha256 of every
 * transfer that completes. The 90 s partition is in sessions-long.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../../bench/lib/procs.js';
import { logLines, servedAgain, sessionsLab, waitLog } from './sessions-harness.js';

/** The server notices a dead client within this (three 5 s heartbeats), plus scheduling slack. */
const DEAD_CLIENT_MS = 15_000 + 2_000;
/** The client is usable again within this after the server or the link comes back. */
const BACK_MS = 5_000;

test('a 20 s partition during transfers: they complete intact; visitors are refused fast; back within 5 s', {
  timeout: 120_000,
}, async (t) => {
  const w = await sessionsLab(t, 'part20', { fileBytes: 6 * 1024 * 1024, paceKiBps: 512 });
  const server = await w.startServer();
  await w.startClient();
  const downloads = [w.download(90_000), w.download(90_000)];
  await sleep(2000);
  const cut = await w.partition();
  const cutAt = Date.now();
  await sleep(3000);
  const visitor = await w.visit(10_000);
  assert.ok(
    ['reset', 'ended'].includes(visitor.outcome),
    `a visitor during the partition: ${visitor.outcome} after ${visitor.ms} ms`,
  );
  assert.ok(visitor.ms < 2500, `refused after ${visitor.ms} ms`);
  const dropped = await waitLog(
    server,
    (l) => l.msg === 'client session ended',
    DEAD_CLIENT_MS,
    'the server drops the client',
  );
  assert.ok(dropped.at - cutAt <= DEAD_CLIENT_MS, `dropped ${dropped.at - cutAt} ms into the partition`);
  const later = await w.visit(5000);
  assert.equal(later.outcome, 'refused', 'with the session gone the public port is closed');
  await sleep(Math.max(0, 20_000 - (Date.now() - cutAt)));
  await cut.remove();
  const healedAt = Date.now();
  const served = await servedAgain(w, 15_000);
  assert.ok(served - healedAt <= BACK_MS, `usable again ${served - healedAt} ms after the link came back`);
  for (const d of await Promise.all(downloads)) {
    assert.equal(d.bytes, w.file.size);
    assert.equal(d.sha256, w.file.sha256);
  }
  t.diagnostic(
    `visitor refused in ${visitor.ms} ms; dropped after ${dropped.at - cutAt} ms; back after ${served - healedAt} ms`,
  );
});

test('kill -9 of the server: visitors are not held; the client is back within 5 s of the restart', {
  timeout: 90_000,
}, async (t) => {
  const w = await sessionsLab(t, 'kill9');
  const server = await w.startServer();
  const client = await w.startClient();
  const inFlight = w.download(30_000).then(
    (r) => ({ ok: true as const, ...r }),
    (e: Error) => ({ ok: false as const, error: e.message }),
  );
  await sleep(1000);
  server.signal('SIGKILL');
  await server.exited;
  const killedAt = Date.now();
  const d = await inFlight;
  // The download cannot complete (its server died); it must end promptly, not hang.
  assert.ok(Date.now() - killedAt < 5000, 'the cut download ended promptly');
  if (d.ok) assert.notEqual(d.bytes, w.file.size, 'a download that ended early is short, not complete');
  await sleep(3000);
  const restarted = await w.startServer();
  const upAt = Date.now();
  await waitLog(
    client,
    (l) => l.msg === 'tunnel active' && Date.parse(l.time) > upAt - 100,
    10_000,
    'tunnel back',
  );
  const served = await servedAgain(w, 10_000);
  assert.ok(served - upAt <= BACK_MS, `usable again ${served - upAt} ms after the server restarted`);
  const again = await w.download(30_000);
  assert.equal(again.sha256, w.file.sha256);
  void restarted;
  t.diagnostic(`back ${served - upAt} ms after the restart`);
});

test('SIGSTOP of the client: visitors refused fast, the server drops it within 15 s, SIGCONT is back within 5 s', {
  timeout: 90_000,
}, async (t) => {
  const w = await sessionsLab(t, 'sigstop');
  const server = await w.startServer();
  const client = await w.startClient();
  client.signal('SIGSTOP');
  const stoppedAt = Date.now();
  t.after(() => client.signal('SIGCONT'));
  await sleep(1500);
  const v = await w.visit(10_000);
  assert.ok(
    ['reset', 'ended'].includes(v.outcome),
    `a visitor of a stopped client: ${v.outcome} after ${v.ms} ms`,
  );
  assert.ok(v.ms < 2500, `refused after ${v.ms} ms`);
  const dropped = await waitLog(
    server,
    (l) => l.msg === 'client session ended',
    DEAD_CLIENT_MS,
    'the server drops the client',
  );
  assert.ok(dropped.at - stoppedAt <= DEAD_CLIENT_MS, `dropped ${dropped.at - stoppedAt} ms after SIGSTOP`);
  client.signal('SIGCONT');
  const contAt = Date.now();
  const served = await servedAgain(w, 15_000);
  assert.ok(served - contAt <= BACK_MS, `usable again ${served - contAt} ms after SIGCONT`);
  const d = await w.download(30_000);
  assert.equal(d.sha256, w.file.sha256);
  t.diagnostic(
    `visitor refused in ${v.ms} ms; dropped after ${dropped.at - stoppedAt} ms; back ${served - contAt} ms after SIGCONT`,
  );
});

test('a late server start: the client that started first is usable within 5 s of the server', {
  timeout: 90_000,
}, async (t) => {
  const w = await sessionsLab(t, 'late');
  await w.startClient({ wait: false });
  // Long enough for the client's backoff to have grown well past 5 s if it were not capped.
  await sleep(15_000);
  await w.startServer();
  const upAt = Date.now();
  const served = await servedAgain(w, 15_000);
  assert.ok(served - upAt <= BACK_MS, `usable ${served - upAt} ms after the server started`);
  const d = await w.download(30_000);
  assert.equal(d.sha256, w.file.sha256);
  t.diagnostic(`usable ${served - upAt} ms after the server started`);
});

test('two clients with one key: no flapping; the second is refused with in_use and waits its maximum', {
  timeout: 90_000,
}, async (t) => {
  const w = await sessionsLab(t, 'twokeys');
  const server = await w.startServer();
  const first = await w.startClient({ name: 'first' });
  const secondAt = Date.now();
  const second = await w.startClient({ name: 'second', wait: false });
  const refused = await waitLog(
    second,
    (l) => l.msg === 'server refused this client' && l.reason === 'in_use',
    10_000,
    'the second client is refused',
  );
  assert.match(String(refused.message), /in use by a live session from 10\.\d+\.\d+\.1:\d+ since /);
  assert.ok(Number(refused.retryInMs) >= 27_000, `it waits ${refused.retryInMs} ms (its maximum is 30 s)`);
  await sleep(10_000);
  const connects = logLines(server, (l) => l.msg === 'client connected');
  assert.equal(connects.length, 1, 'the first session was never replaced');
  assert.equal(logLines(first, (l) => l.msg === 'disconnected').length, 0);
  assert.equal(
    logLines(second, (l) => l.msg === 'server refused this client').length,
    1,
    'one refusal in 10 s',
  );
  const d = await w.download(30_000);
  assert.equal(d.sha256, w.file.sha256);
  t.diagnostic(
    `0 replacements in 10 s; the second refused (in_use) ${refused.at - secondAt} ms after it started, next try in ${refused.retryInMs} ms`,
  );
});

test('a public port taken, then freed: the tunnel opens within one retry interval', {
  timeout: 90_000,
}, async (t) => {
  const w = await sessionsLab(t, 'porttaken');
  await w.startServer();
  const squatter = w.serverNs.spawn('squatter', process.execPath, [
    '-e',
    `require('node:net').createServer((s) => s.destroy()).listen(${w.publicPort}, '0.0.0.0', () => console.log('listening'))`,
  ]);
  await squatter.waitForLine((l) => l === 'listening', 10_000, 'squatter');
  const client = await w.startClient({ wait: false });
  const refused = await waitLog(
    client,
    (l) => l.msg === 'tunnel refused by the server' && l.reason === 'port_in_use',
    10_000,
    'the tunnel is refused',
  );
  assert.ok(Number(refused.retryInMs) > 0, 'a retry is scheduled');
  await sleep(5000);
  await squatter.stop();
  const freedAt = Date.now();
  const refusals = logLines(client, (l) => l.msg === 'tunnel refused by the server');
  const interval = Number(refusals.at(-1)?.retryInMs ?? 30_000);
  const active = await waitLog(client, (l) => l.msg === 'tunnel active', 35_000, 'the tunnel opens');
  assert.ok(
    active.at - freedAt <= interval + 1000,
    `opened ${active.at - freedAt} ms after the port was freed (retry interval ${interval} ms)`,
  );
  const d = await w.download(30_000);
  assert.equal(d.sha256, w.file.sha256);
  t.diagnostic(`opened ${active.at - freedAt} ms after the port was freed; the interval was ${interval} ms`);
});
