/**
 * Sessions that never flap or hang (issue 8), over loopback: two live clients with one key, refused
 * tunnels that heal, visitors of a client that went silent, per-tunnel compression, and the client's
 * controls (close with dropConnections, pause, reconnectNow, updateSettings).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { captureLog, dial, echoServer, freePort, readAll, startPair, tunnelsActive } from './harness.js';

/** Connects and waits for the server to end it: when, and whether it was a reset. */
function visit(port: number, hello = 'anyone?'): Promise<{ at: number; reset: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let reset = false;
    s.on('connect', () => s.write(hello));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') reset = true;
    });
    s.resume();
    s.on('close', () => resolve({ at: Date.now(), reset }));
  });
}

/** Resolves once connecting to `port` is refused (the listener is gone), failing after `ms`. */
async function refusedWithin(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const code = await new Promise<string | undefined>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('connect', () => {
        s.destroy();
        resolve(undefined);
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code));
    });
    if (code === 'ECONNREFUSED') return;
    if (Date.now() > end) throw new Error(`port ${port} still accepts connections after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function resetOrClosed(s: Socket): Promise<{ at: number; reset: boolean }> {
  return new Promise((resolve) => {
    let reset = false;
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') reset = true;
    });
    s.resume();
    if (s.destroyed) resolve({ at: Date.now(), reset });
    else s.on('close', () => resolve({ at: Date.now(), reset }));
  });
}

test('two live clients with one key: at most one replacement; the second is refused with in_use and backs off', async (t) => {
  const cap = captureLog();
  const pair = await startPair(t, { server: { log: cap.log }, client: { reconnectMaxMs: 3000 } });
  await pair.client.waitFor((s) => s.connection.kind === 'connected');
  const first = pair.server.sessions.current!;
  const second = pair.startClient({ reconnectMaxMs: 3000 });
  const snap = await second.waitFor((s) => s.connection.kind === 'rejected', 5000);
  assert.equal(snap.connection.kind === 'rejected' && snap.connection.reason, 'in_use');
  assert.match(
    snap.connection.kind === 'rejected' ? snap.connection.message : '',
    /in use by a live session from 127\.0\.0\.1:\d+ since \d{4}-/,
  );
  const wait = snap.connection.kind === 'rejected' ? snap.connection.nextTryAt! - Date.now() : 0;
  assert.ok(wait > 2000, `the refused client waits its maximum (${wait} ms of 3000)`);
  // Over the next seconds: the first keeps its session, nothing flaps.
  await new Promise((r) => setTimeout(r, 4000));
  assert.equal(pair.server.sessions.current, first, 'the first session was never replaced');
  assert.equal(pair.server.metrics.sessionsTotal, 1);
  assert.equal(pair.client.state.snapshot().connection.kind, 'connected');
  const refusals = cap.lines.filter((l) => l.msg === 'client refused: its key is in use by a live session');
  assert.ok(refusals.length >= 1 && refusals.length <= 3, `${refusals.length} refusals in about 4 s`);
  assert.ok(second.state.snapshot().events.some((e) => e.level === 'error' && /in_use/.test(e.message)));
});

test('a tunnel refused because its port is taken opens by itself once the port is freed', async (t) => {
  const echo = await echoServer(t);
  const port = await freePort();
  const squatter = createServer((s) => s.destroy());
  squatter.listen({ host: '127.0.0.1', port });
  await once(squatter, 'listening');
  const { client } = await startPair(t, {
    tunnels: [{ name: 'e', remotePort: port, localHost: '127.0.0.1', localPort: echo.port }],
    client: { reconnectMaxMs: 2000 },
  });
  const refused = await client.waitFor((s) => s.tunnels[0]!.status === 'error', 5000);
  assert.equal(refused.tunnels[0]!.errorReason, 'port_in_use');
  const retryAt = refused.tunnels[0]!.nextRetryAt!;
  assert.ok(retryAt > Date.now() - 100, 'a retry is scheduled');
  squatter.close();
  await once(squatter, 'close');
  const freedAt = Date.now();
  const active = await client.waitFor((s) => s.tunnels[0]!.status === 'active', 5000);
  assert.equal(active.tunnels[0]!.nextRetryAt, undefined);
  // Within one retry interval of the freeing (the interval is at most reconnectMaxMs).
  assert.ok(Date.now() - freedAt < 2500, `opened ${Date.now() - freedAt} ms after the port was freed`);
  const s = await dial(port, { allowHalfOpen: true });
  const got = readAll(s);
  s.end('back');
  assert.equal((await got).toString(), 'back');
});

test('a client that went silent: visitors are refused within about two seconds, not held', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    heartbeatMs: 60_000,
    heartbeatTimeoutMs: 60_000,
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  // The link freezes: the server still holds the session (and idle channels) for a while.
  proxy.blackhole();
  await new Promise((r) => setTimeout(r, 700));
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const { at, reset } = await visit(remotePort);
    assert.ok(reset, `visitor ${i} was reset`);
    times.push(at - started);
  }
  assert.ok(times[0]! < 2500, `the first visitor waited ${times[0]} ms`);
  assert.ok(times[1]! < 500 && times[2]! < 500, `later visitors waited ${times.slice(1).join(', ')} ms`);
  assert.equal(pair.server.sessions.current?.closed, false, 'the session itself is not dropped for this');
});

test('compress: false sends this tunnel stored (NO_COMPRESS); the default compresses once the link backs up', async (t) => {
  const echo = await echoServer(t);
  const plain = await freePort();
  const squeezed = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    dataChannelPool: 2,
    tunnels: [
      { name: 'plain', remotePort: plain, localHost: '127.0.0.1', localPort: echo.port, compress: false },
      { name: 'squeezed', remotePort: squeezed, localHost: '127.0.0.1', localPort: echo.port },
    ],
  });
  await tunnelsActive(client);
  await client.waitFor(() => proxy.links.length >= 3, 5000);
  // Bytes from the server to the client (the direction the proxy can hold).
  const wire = () => {
    let n = 0;
    for (const l of proxy.links) n += l.client.bytesWritten;
    return n;
  };
  const payload = Buffer.alloc(48 * 1024 * 1024, 'mtt ');
  const through = async (port: number) => {
    const before = wire();
    const s = await dial(port, { allowHalfOpen: true });
    const got = readAll(s);
    s.end(payload);
    assert.equal((await got).length, payload.length);
    return wire() - before;
  };
  const stored = await through(plain);
  assert.ok(stored > payload.length, `compress off: ${stored} bytes on the wire for 48 MiB`);
  // A slow link (about 13 MB/s): once its buffers (a few MB) are full, the server compresses.
  proxy.throttle(128 * 1024);
  const compressed = await through(squeezed);
  proxy.throttle(undefined);
  assert.ok(compressed < stored / 2, `compress on: ${compressed} bytes against ${stored}`);
});

test('close({ dropConnections }) resets every tunneled connection and resolves when they are closed', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  const open = await Promise.all([1, 2, 3].map(() => dial(remotePort)));
  for (const s of open) s.write('x');
  await client.waitFor((s) => s.tunnels[0]!.activeConnections === 3, 3000);
  const ends = open.map(resetOrClosed);
  const started = Date.now();
  await client.close({ dropConnections: true });
  const results = await Promise.all(ends);
  assert.ok(
    results.every((r) => r.at - started < 1500),
    'every visitor was cut',
  );
  assert.equal(client.state.snapshot().connection.kind, 'stopped');
});

test('pause() closes every tunnel on the server and reopens them; the config is untouched', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  client.pause(true);
  const paused = await client.waitFor((s) => s.paused === true && s.tunnels[0]!.status === 'disabled');
  assert.equal(paused.tunnels[0]!.enabled, true);
  await refusedWithin(remotePort, 2000);
  client.pause(false);
  await client.waitFor((s) => s.paused === false && s.tunnels[0]!.status === 'active', 5000);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const got = readAll(s);
  s.end('resumed');
  assert.equal((await got).toString(), 'resumed');
});

test('reconnectNow() skips the backoff; updateSettings() with a new server reconnects there', async (t) => {
  const port = await freePort();
  const pair = await startPair(t);
  await pair.client.close();
  const client = pair.startClient({ port, reconnectMinMs: 20_000, reconnectMaxMs: 30_000 });
  const waiting = await client.waitFor((s) => s.connection.kind === 'reconnecting', 5000);
  assert.ok(waiting.connection.kind === 'reconnecting');
  // Nothing listens there: the client retries at least every second (RECONNECT_PROBE_MS), whatever
  // its backoff; reconnectNow() makes it try at once.
  client.reconnectNow();
  await client.waitFor((s) => s.connection.kind === 'connecting', 1000);
  const started = Date.now();
  client.updateSettings({ server: `127.0.0.1:${pair.server.address.port}` });
  const snap = await client.waitFor((s) => s.connection.kind === 'connected', 3000);
  assert.ok(Date.now() - started < 3000);
  assert.equal(snap.server.address, `127.0.0.1:${pair.server.address.port}`);
  assert.ok(snap.server.allowedPorts && snap.server.allowedPorts.length > 0, 'AuthOk ranges in the snapshot');
  assert.deepEqual(snap.server.limits, { maxConnections: 0, rateLimit: 0 });
});
