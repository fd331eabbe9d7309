/**
 * What `mtt status` reports (src/server/admin-status.ts) and how it prints (src/cli/status-command.ts):
 * rates over the sampling window (with a test clock), refusals folded by source and bounded, the
 * text view's alignment and escaping, and an in-process server's snapshot of a real session.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAge, formatBytes, formatStatus, table } from '../../src/cli/status-command.js';
import { fingerprint } from '../../src/identity/index.js';
import {
  RATE_SAMPLE_MS,
  RATE_WINDOW_MS,
  type ServerStatus,
  StatusSource,
} from '../../src/server/admin-status.js';
import { ControlSessionManager } from '../../src/server/control-session-manager.js';
import { MAX_RECENT_REFUSALS, Metrics } from '../../src/server/metrics.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort, listen, startPair } from '../e2e/harness.js';

function source(metrics: Metrics, clock: { now: number }) {
  const sessions = new ControlSessionManager({
    log: silentLogger,
    metrics,
    heartbeatMs: 5000,
    bindHost: '127.0.0.1',
    displayHost: '127.0.0.1',
    serverRanges: [],
    zstd: true,
  });
  return new StatusSource({
    metrics,
    sessions,
    control: '127.0.0.1:9000',
    fingerprint: 'SHA256:server',
    allowedKeys: () => 2,
    now: () => clock.now,
  });
}

test('rates: bytes per second over the last window, each way; zero again once traffic stops', () => {
  const metrics = new Metrics();
  const clock = { now: 1_000_000 };
  const src = source(metrics, clock);
  const web = metrics.tunnel(10080, 'web');
  src.sample();
  for (let i = 1; i <= 10; i++) {
    clock.now += RATE_SAMPLE_MS;
    web.bytesIn += 5000;
    web.bytesOut += 20_000;
    src.sample();
  }
  const s = src.snapshot();
  assert.deepEqual(s.tunnels[0]!.rate, { in: 5000, out: 20_000 });
  assert.equal(s.tunnels[0]!.state, 'closed', 'no session has it open');
  assert.deepEqual(s.tunnels[0]!.bytes, { in: 50_000, out: 200_000 });
  // Quiet for a whole window: the rate falls to zero.
  for (let i = 0; i <= RATE_WINDOW_MS / RATE_SAMPLE_MS; i++) {
    clock.now += RATE_SAMPLE_MS;
    src.sample();
  }
  assert.deepEqual(src.snapshot().tunnels[0]!.rate, { in: 0, out: 0 });
  // Half a window of traffic at 8000 B/s, read between samples: averaged over the whole window.
  for (let i = 0; i < 3; i++) {
    clock.now += RATE_SAMPLE_MS;
    web.bytesIn += 8000;
    src.sample();
  }
  clock.now += RATE_SAMPLE_MS / 2;
  const r = src.snapshot().tunnels[0]!.rate.in;
  assert.ok(r > 0 && r < 8000, `${r}`);
  assert.equal(s.server.allowedKeys, 2);
  assert.equal(s.session, null);
});

test('refusals: a run from one address is one entry with a count; others get their own; the ring is bounded', () => {
  const metrics = new Metrics();
  for (let p = 0; p < 3; p++)
    metrics.visitorRefused({
      reason: 'not_permitted',
      tunnel: 'web',
      port: 10080,
      peer: `127.0.0.1:${4000 + p}`,
    });
  metrics.visitorRefused({ reason: 'not_permitted', tunnel: 'web', port: 10080, peer: '127.0.0.2:5000' });
  metrics.visitorRefused({ reason: 'max_connections', tunnel: 'web', port: 10080, peer: '127.0.0.2:5001' });
  metrics.authFailed('unknown_key', { peer: '127.0.0.3:6000', client: 'SHA256:x' });
  metrics.authFailed('handshakes_total');
  const r = metrics.recentRefusals;
  assert.deepEqual(
    r.map((x) => [x.kind, x.reason, x.peer, x.count]),
    [
      ['visitor', 'not_permitted', '127.0.0.1:4002', 3],
      ['visitor', 'not_permitted', '127.0.0.2:5000', 1],
      ['visitor', 'max_connections', '127.0.0.2:5001', 1],
      ['login', 'unknown_key', '127.0.0.3:6000', 1],
    ],
  );
  assert.equal(metrics.authFailures.get('handshakes_total'), 1, 'counted, though no address was given');
  for (let i = 0; i < MAX_RECENT_REFUSALS + 10; i++)
    metrics.visitorRefused({
      reason: 'not_permitted',
      tunnel: 'web',
      port: 10080,
      peer: `10.0.${i >> 8}.${i & 255}:1`,
    });
  assert.equal(r.length, MAX_RECENT_REFUSALS);
  assert.equal(r.at(-1)!.peer, `10.0.0.${MAX_RECENT_REFUSALS + 9}:1`);
});

const sample: ServerStatus = {
  format: 1,
  now: '2026-12-02T05:00:00.000Z',
  server: {
    pid: 42,
    control: '0.0.0.0:9000',
    fingerprint: 'SHA256:srv',
    startedAt: '2026-12-02T03:00:00.000Z',
    allowedKeys: 1,
  },
  session: {
    fingerprint: 'SHA256:cli',
    comment: 'bob\u202eevil',
    peer: '203.0.113.7:50000',
    since: '2026-12-02T04:58:00.000Z',
    channels: { waiting: 0, proving: 0, idle: 4, active: 1 },
  },
  tunnels: [
    {
      name: 'ssh',
      port: 10022,
      state: 'open',
      connections: { open: 1, total: 12 },
      bytes: { in: 1_234_567, out: 89 },
      rate: { in: 1500, out: 0 },
      limits: { maxConnections: 0, rateLimit: 10_000_000 },
      permitFrom: false,
      refused: { not_permitted: 2, max_connections: 1 },
      pairingFailures: 0,
      rateLimitedSeconds: { in: 0, out: 0 },
    },
  ],
  recentRefusals: [
    {
      at: '2026-12-02T04:59:01.500Z',
      kind: 'visitor',
      reason: 'not_permitted\x1b[2J',
      peer: '198.51.100.9:4242',
      tunnel: 'ssh',
      port: 10022,
      client: null,
      count: 2,
    },
  ],
};

test('the text view: aligned columns, units, ages, and every peer string escaped', () => {
  const text = formatStatus(sample);
  assert.ok(!/[\x1b\u202e]/.test(text), 'no raw control or bidi character');
  assert.match(text, /^mtt server on 0\.0\.0\.0:9000, pid 42, up 2 h 0 min\n/);
  assert.match(text, /client {9}bob\\u202eevil\n/);
  assert.match(text, /since {10}2026-12-02 04:58:00 UTC \(2 min\)\n/);
  assert.match(text, /data channels {2}1 active, 4 idle, 0 proving, 0 visitors waiting\n/);
  const lines = text.split('\n');
  const head = lines.find((l) => l.includes('NAME'))!;
  const row = lines.find((l) => l.trimStart().startsWith('ssh'))!;
  for (const [h, v] of [
    ['PORT', '10022'],
    ['STATE', 'open'],
    ['TOTAL', '12'],
    ['IN', '1.2 MB'],
    ['IN/S', '1.5 kB/s'],
    ['MAX CONN', '-'],
    ['RATE LIMIT', '10 MB/s'],
    ['REFUSED', '3'],
  ] as const) {
    const at = head.search(new RegExp(`(?<= )${h.replace('/', '\\/')}(?= |$)`));
    assert.ok(row.slice(at).startsWith(v), `${h} column holds ${v}:\n${head}\n${row}`);
  }
  assert.match(
    text,
    /2026-12-02 04:59:01 {2}visitor {2}not_permitted\\x1b\[2J {2}198\.51\.100\.9:4242 {2}ssh:10022 {6}2\n/,
  );
});

test('the text view without a session, tunnels or refusals says so', () => {
  const text = formatStatus({ ...sample, session: null, tunnels: [], recentRefusals: [] });
  assert.match(text, /Session\n {2}no client connected\n/);
  assert.match(text, /\n {2}none opened since the server started\n/);
  assert.match(text, /Recent refusals[^\n]*\n {2}none\n$/);
});

test('formatting helpers', () => {
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.0 kB');
  assert.equal(formatBytes(10_000_000), '10 MB');
  assert.equal(formatAge(59), '59 s');
  assert.equal(formatAge(3 * 86400 + 4 * 3600), '3 d 4 h');
  assert.equal(
    table([
      ['a', 'bbb', 'c'],
      ['aaaa', 'b', ''],
    ]),
    '  a     bbb  c\n  aaaa  b',
  );
});

test("an in-process server's status: the session, the open tunnel with its limits, a refused tunnel", async (t) => {
  const echo = await listen(t, (s) => s.pipe(s));
  const [open, refused] = [await freePort(), await freePort()];
  const pair = await startPair(t, {
    server: { allowPorts: [{ low: open, high: open }] },
    tunnels: [
      { name: 'web', remotePort: open, localPort: echo.port, maxConnections: 7, rateLimit: '2MB/s' },
      { name: 'nope', remotePort: refused, localPort: echo.port },
    ],
  });
  await pair.client.waitFor((s) => s.tunnels.every((x) => x.status !== 'opening'));
  const s = pair.server.status();
  assert.equal(s.session?.comment, 'test-client');
  assert.equal(s.session?.fingerprint, fingerprint(pair.clientIdentity.publicRaw));
  const web = s.tunnels.find((x) => x.port === open);
  assert.deepEqual(
    { state: web?.state, limits: web?.limits },
    { state: 'open', limits: { maxConnections: 7, rateLimit: 2_000_000 } },
  );
  const refusal = s.recentRefusals.find((r) => r.kind === 'tunnel');
  assert.ok(refusal, JSON.stringify(s.recentRefusals));
  assert.equal(refusal.reason, 'port_not_allowed');
  assert.equal(refusal.tunnel, 'nope');
  assert.equal(refusal.port, refused);
  assert.equal(refusal.client, fingerprint(pair.clientIdentity.publicRaw));
  assert.match(String(refusal.peer), /^127\.0\.0\.1:\d+$/);
  assert.equal(pair.server.adminSocketPath, undefined, 'no admin socket unless asked for');
});
