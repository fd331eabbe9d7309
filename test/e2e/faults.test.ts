import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { dial, echoServer, freePort, listen, readAll, startPair, tunnelsActive } from './harness.js';

test('cutting the control link mid-transfer: the transfer completes and the client comes back', async (t) => {
  const size = 20 * 1024 * 1024;
  const block = randomBytes(64 * 1024);
  // A target that streams `size` bytes, a little at a time, so the cut lands mid-transfer.
  const target = await listen(t, (s) => {
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += block.length;
        if (!s.write(block)) {
          s.once('drain', () => setTimeout(pump, 1));
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    dataChannelPool: 0,
    tunnels: [{ name: 'stream', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(client);
  const s = await dial(remotePort);
  const hash = createHash('sha256');
  let got = 0;
  let cutAt = -1;
  await new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => {
      hash.update(c);
      got += c.length;
      if (cutAt < 0 && got > size / 4) {
        cutAt = got;
        proxy.cut(0); // the first link is the control channel
      }
    });
    s.on('end', resolve);
    s.on('error', reject);
  });
  assert.ok(cutAt > 0 && cutAt < size, 'the control link was cut during the transfer');
  assert.equal(got, size);
  const expected = createHash('sha256');
  for (let i = 0; i < size / block.length; i++) expected.update(block);
  assert.equal(hash.digest('hex'), expected.digest('hex'));
  // The client noticed, reconnected by itself, and the tunnel works again.
  await client.waitFor((x) => x.events.some((e) => e.message.startsWith('disconnected')));
  await tunnelsActive(client);
  const again = await dial(remotePort);
  assert.equal((await readAll(again)).length, size);
});

test('a frozen server (black-holed link) is detected within the heartbeat timeout', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    heartbeatMs: 100,
    heartbeatTimeoutMs: 300,
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  const frozenAt = Date.now();
  proxy.blackhole();
  const snap = await client.waitFor((s) => s.connection.kind !== 'connected', 5000);
  const took = Date.now() - frozenAt;
  assert.ok(took <= 100 + 300 + 300, `detected after ${took} ms; interval + timeout is 400 ms`);
  assert.ok(snap.events.some((e) => e.message.includes('no answer to a heartbeat')));
});

test('the server drops a client that went silent, after three heartbeat intervals', async (t) => {
  const pair = await startPair(t, { server: { heartbeatMs: 100 } });
  const { proxy, client } = await pair.viaProxy({ heartbeatMs: 100, heartbeatTimeoutMs: 60_000 });
  await client.waitFor((s) => s.connection.kind === 'connected');
  assert.ok(pair.server.sessions.current);
  const session = pair.server.sessions.current!;
  proxy.blackhole();
  const started = Date.now();
  while (!session.closed) {
    assert.ok(Date.now() - started < 3000, 'session still open 3 s after the client went silent');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(pair.server.metrics.clientConnected, 0);
});
