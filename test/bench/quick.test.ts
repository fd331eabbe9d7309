/**
 * `npm run bench -- --quick` as CI runs it: proves the harness works end to end (every path, every
 * workload measured). No timing is asserted: figures are for docs/BENCHMARKS.md, not for tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BenchCell, unmeasuredCells } from '../lib/bench-results.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

interface Results {
  paths: Array<{ name: string }>;
  figures: Array<{ id: string; results: Record<string, BenchCell> }>;
}

test('the benchmark quick mode measures every path and workload', { timeout: 280_000 }, async () => {
  const out = join(await mkdtemp(join(tmpdir(), 'mtt-bench-')), 'results.json');
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
    (resolve) => {
      execFile(
        process.execPath,
        [RUN, '--quick', '--out', out],
        { timeout: 270_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    },
  );
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const results = JSON.parse(await readFile(out, 'utf8')) as Results;
  assert.deepEqual(
    results.paths.map((p) => p.name),
    ['direct', 'mtt', 'ssh', 'ssh-comp', 'node-relay'],
  );
  assert.deepEqual(unmeasuredCells(results.figures), [], 'every cell was measured');
  assert.ok(results.figures.length >= 10, `${results.figures.length} figures`);
  assert.match(stdout, /\| .*mtt.*\|/, 'the markdown table was printed');
});
