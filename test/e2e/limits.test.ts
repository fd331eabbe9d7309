/**
 * Limits per tunnel, enforced by the server: maxConnections (visitors beyond it are closed at
 * accept, counted) and rateLimit (readers pause, nothing is dropped), the key's ceilings from the
 * allow-list (maxconnections, ratelimit) under which the tunnel's own requests fall, and the
 * effective values the client learns from TunnelStatus. (The rate's accuracy is measured by the
 * benchmark, `npm run bench -- --only rate-limit`, not here.)
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { formatPublicKeyLine, generateIdentity, type Identity } from '../../src/identity/index.js';
import { freePort, listen, startPair, tunnelsActive, within } from './harness.js';

async function allowFile(t: TestContext, id: Identity, options: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mtt-limits-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'allowed_keys');
  await writeFile(path, `${options} ${formatPublicKeyLine(id.publicRaw, 'k')}\n`, { mode: 0o600 });
  return path;
}

/** Connects and resolves once connected or closed; `answered` resolves with the first data or 'closed'. */
async function visit(port: number): Promise<{ s: Socket; first: Promise<string> }> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  const first = new Promise<string>((resolve) => {
    s.once('data', (c: Buffer) => resolve(c.toString()));
    s.once('close', () => resolve('closed'));
  });
  await new Promise<void>((resolve) => {
    s.once('connect', () => resolve());
    s.once('close', () => resolve());
  });
  return { s, first };
}

test('maxConnections: the visitor beyond the limit is closed at accept; a freed slot lets the next in', async (t) => {
  let served = 0;
  const service = await listen(t, (s) => {
    served += 1;
    s.write('hi');
  });
  const remotePort = await freePort();
  const pair = await startPair(t, {
    tunnels: [{ name: 'two', remotePort, localPort: service.port, maxConnections: 2 }],
  });
  const snap = await tunnelsActive(pair.client);
  assert.deepEqual(snap.tunnels[0]!.effective, { maxConnections: 2, rateLimit: 0 });
  const a = await visit(remotePort);
  const b = await visit(remotePort);
  assert.equal(await within(3000, 'a', a.first), 'hi');
  assert.equal(await within(3000, 'b', b.first), 'hi');
  const c = await visit(remotePort);
  assert.equal(await within(3000, 'c is closed', c.first), 'closed');
  const counters = pair.server.metrics.tunnels.get(remotePort)!;
  assert.equal(counters.refused.max_connections, 1);
  assert.equal(served, 2, 'the refused visitor never reached the service');
  assert.deepEqual(counters.limits, { maxConnections: 2, rateLimit: 0 });
  a.s.destroy();
  // The slot frees when the server sees the close; poll with new visitors.
  for (let i = 0; ; i++) {
    const d = await visit(remotePort);
    if ((await within(3000, 'd', d.first)) === 'hi') break;
    assert.ok(i < 30, 'a freed slot is taken again');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(
    await pair.server.metrics.prometheus(),
    new RegExp(
      `mtt_tunnel_visitors_refused_total\\{tunnel="two",port="${remotePort}",reason="max_connections"\\} [1-9]`,
    ),
  );
});

test("the key's ceilings: maxconnections and ratelimit cap what the tunnel asks for, and TunnelStatus says so", async (t) => {
  const service = await listen(t, (s) => s.write('hi'));
  const me = generateIdentity('me');
  const path = await allowFile(t, me, 'maxconnections="1",ratelimit="8Mbit/s"');
  const [asksMore, asksNothing, asksLess] = [await freePort(), await freePort(), await freePort()];
  const pair = await startPair(t, {
    server: { allowedKeysPath: path },
    client: { identity: me },
    tunnels: [
      { name: 'more', remotePort: asksMore, localPort: service.port, maxConnections: 5, rateLimit: '10MB/s' },
      { name: 'nothing', remotePort: asksNothing, localPort: service.port },
      { name: 'less', remotePort: asksLess, localPort: service.port, rateLimit: '100KB/s' },
    ],
  });
  const snap = await tunnelsActive(pair.client);
  assert.deepEqual(snap.server.limits, { maxConnections: 1, rateLimit: 1_000_000 });
  const eff = Object.fromEntries(snap.tunnels.map((x) => [x.name, x.effective]));
  assert.deepEqual(eff, {
    more: { maxConnections: 1, rateLimit: 1_000_000 },
    nothing: { maxConnections: 1, rateLimit: 1_000_000 },
    less: { maxConnections: 1, rateLimit: 100_000 },
  });
  const a = await visit(asksMore);
  assert.equal(await within(3000, 'a', a.first), 'hi');
  const b = await visit(asksMore);
  assert.equal(await within(3000, 'b is closed', b.first), 'closed');
});

test('rateLimit: bytes each way arrive whole and in order, paced by the server (no byte dropped)', async (t) => {
  const size = 600_000;
  const down = randomBytes(size);
  let upHash: Promise<string> = Promise.resolve('');
  const service = await listen(
    t,
    (s) => {
      const h = createHash('sha256');
      let got = 0;
      upHash = new Promise((resolve) => {
        s.on('data', (c: Buffer) => {
          h.update(c);
          got += c.length;
          if (got === size) resolve(h.digest('hex'));
        });
      });
      s.write(down);
    },
    { allowHalfOpen: true },
  );
  const remotePort = await freePort();
  const rate = 1_000_000;
  const pair = await startPair(t, {
    tunnels: [{ name: 'slow', remotePort, localPort: service.port, rateLimit: '1MB/s' }],
  });
  await tunnelsActive(pair.client);
  const up = randomBytes(size);
  const s = connect({ host: '127.0.0.1', port: remotePort });
  s.on('error', () => {});
  const h = createHash('sha256');
  let got = 0;
  const started = Date.now();
  const downDone = new Promise<number>((resolve) => {
    s.on('data', (c: Buffer) => {
      h.update(c);
      got += c.length;
      if (got === size) resolve(Date.now());
    });
  });
  s.write(up);
  const downAt = await within(20_000, 'the download', downDone);
  assert.equal(h.digest('hex'), createHash('sha256').update(down).digest('hex'));
  assert.equal(await within(20_000, 'the upload', upHash), createHash('sha256').update(up).digest('hex'));
  const upAt = Date.now();
  // A lower bound only (a busy machine is slower, never faster): what exceeds the burst waits.
  const burst = Math.max(65_536, rate * 0.05) + 262_144;
  const least = ((size - burst) / rate) * 1000;
  assert.ok(downAt - started >= least, `download took ${downAt - started} ms, at least ${least} expected`);
  assert.ok(upAt - started >= least, `upload took ${upAt - started} ms, at least ${least} expected`);
  const c = pair.server.metrics.tunnels.get(remotePort)!;
  assert.ok(c.rateLimitedMs.in > 0 && c.rateLimitedMs.out > 0, 'both directions were paused');
  assert.deepEqual(c.limits, { maxConnections: 0, rateLimit: rate });
  s.destroy();
});
