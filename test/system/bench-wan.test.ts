/**
 * `npm run bench -- --profile wan --quick` as CI runs it: proves the WAN profile works end to end
 * (namespaces, emulator, self-check, every path and workload measured, everything removed after).
 * No timing is asserted, not even the self-check's verdict: figures are for docs/BENCHMARKS.md.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BenchCell, unmeasuredCells } from '../lib/bench-results.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

interface Results {
  profile: string;
  paths: Array<{ name: string }>;
  figures: Array<{
    id: string;
    results: Record<string, BenchCell>;
  }>;
  wanCheck: {
    checks: Array<{
      key: string;
      ping?: { avgMs: number };
      directMbit?: number;
      measured?: { pkts: number };
    }>;
  };
}

test('the WAN benchmark quick mode checks its link and measures every path and workload', {
  timeout: 600_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-bench-wan-'));
  const out = join(dir, 'results.json');
  const { code, stdout, stderr, pid } = await new Promise<{
    code: number;
    stdout: string;
    stderr: string;
    pid: number;
  }>((resolve) => {
    const child = execFile(
      process.execPath,
      [RUN, '--profile', 'wan', '--quick', '--out', out],
      { timeout: 580_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
          pid: child.pid ?? 0,
        }),
    );
  });
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const results = JSON.parse(await readFile(out, 'utf8')) as Results;
  assert.equal(results.profile, 'wan');
  assert.deepEqual(
    results.paths.map((p) => p.name),
    ['direct', 'mtt', 'ssh', 'ssh-comp'],
  );
  assert.deepEqual(unmeasuredCells(results.figures), [], 'every cell was measured');
  const ids = results.figures.map((f) => f.id);
  for (const want of [
    /^wan_bulk_/,
    /^wan_p8_.*_jain$/,
    /^wan_ttfb_p50_ms$/,
    /^wan_json_10mbit/,
    /^wan_cpu/,
  ]) {
    assert.ok(
      ids.some((id) => want.test(id)),
      `a ${want} figure`,
    );
  }
  // The self-check ran for every link setting, and the runs went through the emulator.
  assert.equal(results.wanCheck.checks.length, 8);
  for (const c of results.wanCheck.checks) {
    assert.ok(c.ping && c.ping.avgMs > 0, `${c.key}: pinged`);
    assert.ok((c.measured?.pkts ?? 0) > 0, `${c.key}: the measured runs crossed the emulator`);
    if (c.key.includes('-0pct-')) assert.ok((c.directMbit ?? 0) > 0, `${c.key}: direct iperf3 measured`);
  }
  assert.match(stdout, /WAN self-check/);
  assert.match(stdout, /\| .*mtt ÷ direct.*\|/, 'the markdown table was printed');
  // Nothing of the run is left: its namespaces carry its pid.
  const left = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) =>
    n.startsWith(`mtt-${pid}-`),
  );
  assert.deepEqual(left, []);
});
