/**
 * `npm run bench:rate-limit -- --quick`: the harness runs end to end (real mtt server and client
 * processes, 1 and 8 connections each way) and prints one row per case. No rate is asserted here:
 * the figures are for the report, measured on a quiet machine.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../bench/rate-limit.js', import.meta.url));

test('the rate-limit bench measures 1 and 8 connections, upload and download', {
  timeout: 120_000,
}, async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
    (resolve) => {
      execFile(
        process.execPath,
        [RUN, '--quick', '--seconds', '1', '--rate', '5MB/s'],
        { timeout: 110_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    },
  );
  assert.equal(code, 0, stderr);
  const rows = stdout.split('\n').filter((l) => /^\| [18] \| (upload|download) \|/.test(l));
  assert.equal(rows.length, 4, stdout);
  for (const r of rows) {
    const ratio = Number(r.split('|')[4]);
    assert.ok(ratio > 0, `a rate was measured: ${r}`);
  }
});
