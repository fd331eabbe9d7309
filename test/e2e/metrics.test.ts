/**
 * The metrics listeners of both ends, with real processes and sockets: the server's /metrics,
 * /healthz and /readyz (what "ready" means), mtt_frame_errors_total counting a bad frame by its
 * code, and `mtt client --metrics` serving per-tunnel counters and latency histograms. (promtool and
 * a real Prometheus scrape are in test/system/prometheus.test.ts.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import { startServer } from '../../src/server/index.js';
import { spawnMtt } from '../cli/run-mtt.js';
import { freePort, startPair, startTestServer, tunnelsActive, within } from './harness.js';
import { getOnce, sample } from './scrape.js';

test('server: /metrics has tunnel, process and runtime metrics; /healthz; /readyz says why', async (t) => {
  const target = createServer((_req, res) => res.end('hi\n'));
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  t.after(() => target.close());
  const remotePort = await freePort();
  const { server, client } = await startPair(t, {
    server: { metrics: { host: '127.0.0.1', port: 0 } },
    tunnels: [{ name: 'web', remotePort, localPort: (target.address() as { port: number }).port }],
  });
  await tunnelsActive(client);
  const base = `http://127.0.0.1:${server.metricsAddress!.port}`;
  assert.equal(await getOnce(remotePort), 'hi\n');

  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const labels = `tunnel="web",port="${remotePort}"`;
  assert.equal(sample(text, `mtt_tunnel_connections_total{${labels}}`), 1);
  assert.ok(sample(text, `mtt_tunnel_bytes_total{${labels},direction="in"}`)! > 0);
  assert.ok(sample(text, `mtt_tunnel_bytes_total{${labels},direction="out"}`)! > 0);
  assert.equal(sample(text, 'mtt_client_connected'), 1);
  assert.equal(sample(text, 'mtt_sessions_total'), 1);
  assert.match(text, /^mtt_data_channels\{state="idle"\} \d+$/m);
  // prom-client's process and runtime metrics.
  assert.ok(sample(text, 'process_resident_memory_bytes')! > 1e6);
  assert.match(text, /^nodejs_eventloop_lag_seconds \d/m);
  assert.match(text, /^nodejs_heap_size_used_bytes \d/m);

  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok\n');
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200);
  const body = (await ready.json()) as { ready: boolean; checks: Record<string, unknown> };
  assert.deepEqual(body, {
    ready: true,
    checks: { listening: true, allowList: { source: 'inline', keys: 1 }, clientConnected: true },
  });
  assert.equal((await fetch(`${base}/nothing`)).status, 404);
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

test('server: /readyz is 503 while no key may log in, and after close', async (t) => {
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    identity: generateIdentity('s'),
    allowList: [],
    metrics: { host: '127.0.0.1', port: 0 },
  });
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.metricsAddress!.port}`;
  const r = await fetch(`${base}/readyz`);
  assert.equal(r.status, 503);
  assert.deepEqual(((await r.json()) as { checks: unknown }).checks, {
    listening: true,
    allowList: { source: 'inline', keys: 0 },
    clientConnected: false,
  });
  // Alive all the same.
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  await server.close();
  await assert.rejects(fetch(`${base}/healthz`), 'the metrics listener closes with the server');
});

test('server: a frame too large for the control port is counted in mtt_frame_errors_total', async (t) => {
  const server = await startTestServer(t, generateIdentity('c'), { metrics: { host: '127.0.0.1', port: 0 } });
  const base = `http://127.0.0.1:${server.metricsAddress!.port}/metrics`;
  const before =
    sample(await (await fetch(base)).text(), 'mtt_frame_errors_total{reason="frame_too_large"}') ?? 0;
  const s = connect({ host: '127.0.0.1', port: server.address.port });
  await once(s, 'connect');
  s.on('error', () => {});
  // A cleartext frame header announcing 1 MiB: refused by length before any body is buffered.
  s.write(Buffer.from([0x00, 0x10, 0x00, 0x00]));
  await within(3000, 'the server closes the connection', once(s, 'close'));
  const after = sample(await (await fetch(base)).text(), 'mtt_frame_errors_total{reason="frame_too_large"}');
  assert.equal(after, before + 1);
});

test('mtt client --metrics: per-tunnel counters, dial failures, reconnects and latency histograms', async (t) => {
  const target = createServer((_req, res) => res.end('hello\n'));
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  t.after(() => target.close());
  const clientKey = generateIdentity('cli');
  const serverKey = generateIdentity('srv');
  const server = await startTestServer(t, clientKey, { identity: serverKey });
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeIdentityFiles } = await import('../../src/identity/index.js');
  const dir = await mkdtemp(join(tmpdir(), `mtt-metrics-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeIdentityFiles(join(dir, 'id'), clientKey);
  const web = await freePort();
  const broken = await freePort();
  const metricsPort = await freePort();
  const targetPort = (target.address() as { port: number }).port;
  const client = spawnMtt(
    t,
    [
      'client',
      '--server',
      `127.0.0.1:${server.address.port}`,
      '--server-key',
      server.fingerprint,
      '-i',
      join(dir, 'id'),
      '-R',
      `${web}:127.0.0.1:${targetPort}`,
      // Nobody listens on the local side of this one: every visitor is a failed dial.
      '-R',
      `${broken}:127.0.0.1:${await freePort()}`,
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--log-format',
      'json',
    ],
    { env: { ...process.env, MTT_CONFIG_DIR: dir } },
  );
  await client.waitFor(`"metrics":"http://127.0.0.1:${metricsPort}/metrics"`);
  const base = `http://127.0.0.1:${metricsPort}`;
  // Ready once connected and both tunnels are open.
  for (let i = 0; ; i++) {
    const r = await fetch(`${base}/readyz`);
    if (r.status === 200) break;
    assert.ok(i < 100, `client never ready: ${await r.text()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await getOnce(web), 'hello\n');
  assert.equal(await getOnce(web), 'hello\n');
  await assert.rejects(getOnce(broken));

  // Counters reach the store within its batching interval; poll the endpoint, not a clock.
  let text = '';
  for (let i = 0; i < 50; i++) {
    text = await (await fetch(`${base}/metrics`)).text();
    if (sample(text, `mtt_client_tunnel_connections_total{tunnel="tcp-${web}"}`) === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(sample(text, `mtt_client_tunnel_connections_total{tunnel="tcp-${web}"}`), 2);
  assert.ok(sample(text, `mtt_client_tunnel_bytes_total{tunnel="tcp-${web}",direction="in"}`)! > 0);
  assert.ok(sample(text, `mtt_client_tunnel_bytes_total{tunnel="tcp-${web}",direction="out"}`)! > 0);
  assert.equal(sample(text, `mtt_client_tunnel_local_dial_failures_total{tunnel="tcp-${broken}"}`), 1);
  assert.equal(sample(text, `mtt_client_tunnel_up{tunnel="tcp-${web}"}`), 1);
  assert.equal(sample(text, 'mtt_client_connected'), 1);
  assert.equal(sample(text, 'mtt_client_handshake_seconds_count{result="ok"}'), 1);
  assert.ok(sample(text, 'mtt_client_data_channel_setup_seconds_count')! >= 1);
  assert.equal(sample(text, `mtt_client_local_dial_seconds_count{tunnel="tcp-${web}",result="ok"}`), 2);
  assert.equal(
    sample(text, `mtt_client_local_dial_seconds_count{tunnel="tcp-${broken}",result="failed"}`),
    1,
  );
  assert.equal(sample(text, 'mtt_client_reconnects_total'), 0);
  assert.ok(sample(text, 'process_resident_memory_bytes')! > 1e6);

  // The server goes away: the client reconnects (counted) and is not ready meanwhile.
  await server.close();
  for (let i = 0; ; i++) {
    const r = await fetch(`${base}/readyz`);
    text = await (await fetch(`${base}/metrics`)).text();
    if (r.status === 503 && (sample(text, 'mtt_client_reconnects_total') ?? 0) >= 1) break;
    assert.ok(i < 100, 'the client should notice the server is gone');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(sample(text, 'mtt_client_connected'), 0);
  assert.equal(await client.stop(), 0);
});
