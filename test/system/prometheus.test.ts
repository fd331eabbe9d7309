/**
 * The metrics as Prometheus itself sees them: a real `prometheus` (Debian's package) on loopback
 * scrapes a running `mtt server --metrics` and `mtt client --metrics`, both processes, while a tunnel
 * carries requests; the targets must be up, the scraped series must hold the tunnel's counts, and
 * `promtool check metrics` must accept both expositions (no lint problem at all).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freshHome, homeEnv, runMtt, spawnMtt } from '../cli/run-mtt.js';
import { freePort } from '../e2e/harness.js';
import { getOnce } from '../e2e/scrape.js';
import { findProgram } from './lib/netns.js';

function need(program: string): string {
  const p = findProgram(program);
  if (!p) throw new Error(`${program} not found: apt-get install -y --no-install-recommends prometheus`);
  return p;
}

/** `promtool check metrics` on `text`: its output (empty when clean) and exit code. */
function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(need('promtool'), ['check', 'metrics'], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
    child.stdin?.end(text);
  });
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a real Prometheus scrapes mtt server and mtt client; promtool accepts both', async (t) => {
  const prometheus = need('prometheus');
  need('promtool');
  const home = await freshHome(t);
  const env = homeEnv(home, { MTT_CONFIG_DIR: join(home, 'srv') });
  assert.equal((await runMtt(['keygen', '-f', 'client_key'], { env, cwd: home })).code, 0);
  assert.equal((await runMtt(['allow', 'client_key.pub'], { env, cwd: home })).code, 0);
  const [control, serverMetrics, clientMetrics, publicPort, promPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const server = spawnMtt(
    t,
    [
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(control),
      '--public-host',
      '127.0.0.1',
      '--metrics',
      `127.0.0.1:${serverMetrics}`,
      '--log-format',
      'json',
    ],
    { env, cwd: home },
  );
  await server.waitFor('"msg":"mtt server ready"');
  const fp = /"fingerprint":"(SHA256:[^"]+)"/.exec(server.stderr())![1]!;
  const web = createServer((_req, res) => res.end('scraped\n'));
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  t.after(() => web.close());
  const client = spawnMtt(
    t,
    [
      'client',
      '--server',
      `127.0.0.1:${control}`,
      '--server-key',
      fp,
      '-i',
      join(home, 'client_key'),
      '-R',
      `${publicPort}:127.0.0.1:${(web.address() as { port: number }).port}`,
      '--metrics',
      `127.0.0.1:${clientMetrics}`,
      '--log-format',
      'json',
    ],
    { env, cwd: home },
  );
  await client.waitFor('"msg":"tunnel active"');
  // Three requests on three connections (no keep-alive): three tunneled connections.
  for (let i = 0; i < 3; i++) assert.equal(await getOnce(publicPort), 'scraped\n');

  // promtool: both expositions are clean (exit 0, no lint line).
  for (const port of [serverMetrics, clientMetrics]) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const r = await promtool(text);
    assert.deepEqual(r, { code: 0, output: '' }, `promtool on :${port}`);
  }

  const dir = await mkdtemp(join(tmpdir(), `mtt-prom-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: mtt-server',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${serverMetrics}']`,
      '  - job_name: mtt-client',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${clientMetrics}']`,
      '',
    ].join('\n'),
  );
  const prom: ChildProcess = spawn(
    prometheus,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let promLog = '';
  prom.stderr?.on('data', (c: Buffer) => {
    promLog = (promLog + c.toString()).slice(-20_000);
  });
  t.after(async () => {
    if (prom.exitCode === null) {
      prom.kill('SIGTERM');
      await once(prom, 'close');
    }
  });
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  type Target = { labels: { job: string }; health: string; lastError: string };
  const targets = await until('both targets up', 30_000, async () => {
    const body = (await (await fetch(`${api}/targets`)).json()) as { data: { activeTargets: Target[] } };
    const up = body.data.activeTargets.filter((x) => x.health === 'up');
    return up.length === 2 ? body.data.activeTargets : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\nprometheus log:\n${promLog}`);
  });
  assert.deepEqual(targets.map((x) => x.labels.job).sort(), ['mtt-client', 'mtt-server']);
  assert.ok(targets.every((x) => x.lastError === ''));

  const query = async (q: string) => {
    const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(q)}`)).json()) as {
      data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    return body.data.result;
  };
  let seen: unknown;
  const served = await until('the tunnel counters in Prometheus', 20_000, async () => {
    const r = await query(`mtt_tunnel_connections_total{port="${publicPort}"}`);
    seen = r;
    return r[0]?.value[1] === '3' ? r : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last answer: ${JSON.stringify(seen)}`);
  });
  assert.equal(served[0]!.metric.job, 'mtt-server');
  assert.equal(served[0]!.metric.tunnel, `tcp-${publicPort}`);
  const clientSide = await until('the client counters in Prometheus', 20_000, async () => {
    const r = await query(`mtt_client_tunnel_connections_total{tunnel="tcp-${publicPort}"}`);
    return r[0]?.value[1] === '3' ? r : undefined;
  });
  assert.equal(clientSide[0]!.metric.job, 'mtt-client');
  const up = await query('up');
  assert.deepEqual(up.map((s) => `${s.metric.job}=${s.value[1]}`).sort(), ['mtt-client=1', 'mtt-server=1']);
  const rss = await query('process_resident_memory_bytes');
  assert.equal(rss.length, 2, 'process metrics from both');
  const hist = await query('mtt_client_handshake_seconds_count');
  assert.equal(hist[0]?.value[1], '1');

  assert.equal(await client.stop(), 0);
  assert.equal(await server.stop(), 0);
});
