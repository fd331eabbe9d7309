import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { dial, echoServer, freePort, listen, readAll, startPair, tunnelsActive } from './harness.js';

const run = promisify(execFile);

test('HTTP through a tunnel: curl against a real HTTP server', async (t) => {
  const http = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-path': req.url ?? '' });
    res.end(`hello ${req.method} ${req.url}\n`);
  });
  http.listen({ host: '127.0.0.1', port: 0 });
  await once(http, 'listening');
  t.after(() => {
    http.closeAllConnections();
    http.close();
  });
  const remotePort = await freePort();
  const localPort = (http.address() as AddressInfo).port;
  const { client, server } = await startPair(t, {
    tunnels: [{ name: 'web', remotePort, localHost: '127.0.0.1', localPort }],
  });
  const snap = await tunnelsActive(client);
  assert.equal(snap.tunnels[0]!.publicAddress, `127.0.0.1:${remotePort}`);
  const { stdout } = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    `http://127.0.0.1:${remotePort}/some/path?x=1`,
  ]);
  assert.equal(stdout, 'hello GET /some/path?x=1\n');
  // A POST with a body, through a second connection.
  const post = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '-d',
    'payload',
    `http://127.0.0.1:${remotePort}/p`,
  ]);
  assert.equal(post.stdout, 'hello POST /p\n');
  const counters = server.metrics.tunnels.get(remotePort)!;
  assert.equal(counters.totalConnections, 2);
  assert.ok(counters.bytesIn > 0 && counters.bytesOut > 0);
  const text = await server.metrics.prometheus();
  assert.match(text, new RegExp(`mtt_tunnel_connections_total\\{tunnel="web",port="${remotePort}"\\} 2`));
  await client.waitFor((s) => s.tunnels[0]!.totalConnections === 2 && s.tunnels[0]!.activeConnections === 0);
});

test('100 MB each way arrive intact (sha256)', async (t) => {
  const size = 100 * 1024 * 1024;
  // The target sends 100 MB and hashes what it receives.
  const fromTarget = randomBytes(1024 * 1024);
  let targetGot: Promise<string> = Promise.resolve('');
  const target = await listen(
    t,
    (s) => {
      const h = createHash('sha256');
      let gotEof = false;
      let sentAll = false;
      const finish = () => {
        if (gotEof && sentAll) s.end();
      };
      targetGot = new Promise((resolve) => {
        s.on('data', (c: Buffer) => h.update(c));
        s.on('end', () => {
          resolve(h.digest('hex'));
          gotEof = true;
          finish();
        });
      });
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += fromTarget.length;
          if (!s.write(fromTarget)) {
            s.once('drain', pump);
            return;
          }
        }
        sentAll = true;
        finish();
      };
      pump();
    },
    { allowHalfOpen: true },
  );
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'bulk', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(client);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const chunk = randomBytes(1024 * 1024);
  const expectUp = createHash('sha256');
  const expectDown = createHash('sha256');
  for (let i = 0; i < size / fromTarget.length; i++) expectDown.update(fromTarget);
  const down = createHash('sha256');
  let downBytes = 0;
  s.on('data', (c: Buffer) => {
    down.update(c);
    downBytes += c.length;
  });
  const ended = once(s, 'end');
  for (let sent = 0; sent < size; sent += chunk.length) {
    expectUp.update(chunk);
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  await ended;
  assert.equal(downBytes, size);
  assert.equal(down.digest('hex'), expectDown.digest('hex'));
  assert.equal(await targetGot, expectUp.digest('hex'));
  s.destroy();
});

test('200 concurrent connections each get their own bytes back', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'echo', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  const results = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const payload = Buffer.concat([Buffer.from(`conn ${i}:`), randomBytes(1000 + i * 37)]);
      const s = await dial(remotePort, { allowHalfOpen: true });
      const got = readAll(s);
      s.end(payload);
      return (await got).equals(payload);
    }),
  );
  assert.equal(results.filter(Boolean).length, 200);
  const snap = await client.waitFor((s) => s.tunnels[0]!.activeConnections === 0);
  assert.equal(snap.tunnels[0]!.totalConnections, 200);
});

test('half-close: the target answers after the external side shut its write side', async (t) => {
  // The target reads until EOF, then answers with what it read, reversed.
  const target = await listen(
    t,
    (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        const got = Buffer.concat(chunks).toString();
        s.end(`after EOF: ${[...got].reverse().join('')}`);
      });
    },
    { allowHalfOpen: true },
  );
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'half', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(client);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const answer = readAll(s);
  s.write('abc');
  s.end('def');
  assert.equal((await answer).toString(), 'after EOF: fedcba');
});

test('the reverse half-close: the target shuts first, the external side still sends', async (t) => {
  let gotAfterEof: Promise<string> = Promise.resolve('');
  const target = await listen(
    t,
    (s) => {
      s.end('bye early');
      gotAfterEof = readAll(s).then((b) => b.toString());
    },
    { allowHalfOpen: true },
  );
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'half2', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(client);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await once(s, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'bye early');
  s.end('still talking');
  assert.equal(await gotAfterEof, 'still talking');
});

test('a target that refuses closes the external connection promptly and is counted', async (t) => {
  const deadPort = await freePort();
  const remotePort = await freePort();
  const { client, server } = await startPair(t, {
    tunnels: [{ name: 'dead', remotePort, localHost: '127.0.0.1', localPort: deadPort }],
  });
  await tunnelsActive(client);
  const s = await dial(remotePort);
  const started = Date.now();
  await new Promise<void>((resolve) => {
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.resume();
  });
  assert.ok(Date.now() - started < 3000, 'closed well before the pairing timeout');
  const snap = await client.waitFor((x) => x.tunnels[0]!.failedDials === 1);
  assert.ok(snap.events.some((e) => e.level === 'warn' && e.message.includes('refused')));
  assert.equal(server.metrics.tunnels.get(remotePort)!.pairingFailures, 1);
});

test('a data channel that ended cleanly carries the next connection (no new TCP connection each time)', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    dataChannelPool: 1,
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  for (let i = 0; i < 10; i++) {
    const s = await dial(remotePort, { allowHalfOpen: true });
    const got = readAll(s);
    s.end(`round ${i}`);
    assert.equal((await got).toString(), `round ${i}`);
    await client.waitFor((x) => x.tunnels[0]!.activeConnections === 0);
  }
  // One control connection, the pooled channel, at most one refill raced in before the first reuse.
  assert.ok(proxy.links.length <= 3, `${proxy.links.length} TCP connections for 10 tunneled ones`);
  assert.equal(client.state.snapshot().tunnels[0]!.totalConnections, 10);
});

test('a burst of 150 new connections at once all get through, beyond the handshake cap', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    server: { maxUnauthenticated: 8 },
    client: { dataChannelPool: 0 },
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  const ok = await Promise.all(
    Array.from({ length: 150 }, async (_, i) => {
      const s = await dial(remotePort, { allowHalfOpen: true });
      const got = readAll(s);
      s.end(`c${i}`);
      return (await got).toString() === `c${i}`;
    }),
  );
  assert.equal(ok.filter(Boolean).length, 150);
});

test('a reset by the target resets the external connection, and the tunnel goes on', async (t) => {
  const target = await listen(t, (s) => {
    s.once('data', () => s.resetAndDestroy());
  });
  const remotePort = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'rst', remotePort, localHost: '127.0.0.1', localPort: target.port }],
  });
  await tunnelsActive(client);
  for (let i = 0; i < 2; i++) {
    const s = await dial(remotePort);
    const outcome = new Promise<string>((resolve) => {
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      s.on('close', () => resolve('closed'));
      s.resume();
    });
    s.write('trigger');
    assert.equal(await outcome, 'ECONNRESET');
  }
  await client.waitFor((x) => x.tunnels[0]!.activeConnections === 0 && x.tunnels[0]!.totalConnections === 2);
});
