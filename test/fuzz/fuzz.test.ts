/**
 * A short run of the fuzzing campaign (about a minute; fewer inputs on a slower machine): every
 * in-process target and the live server, with a fresh seed each time. It must end with zero
 * findings; on a finding, the message names the seed and the files that reproduce it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LiveSummary } from '../../fuzz/live/live.js';
import type { FuzzSummary } from '../../fuzz/run.js';
import { TARGETS } from '../../fuzz/targets/index.js';

const RUN = fileURLToPath(new URL('../../fuzz/run.js', import.meta.url));
const SECONDS = 50;

test('a short fuzzing run finds nothing', { timeout: (SECONDS + 90) * 1000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `mtt-fuzz-test-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'summary.json');
  const seed = (Math.random() * 0x1_0000_0000) >>> 0;
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      RUN,
      '--seed',
      String(seed),
      '--seconds',
      String(SECONDS),
      '--jobs',
      '2',
      '--concurrency',
      '24',
      '--out',
      join(dir, 'findings'),
      '--json',
      json,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.diagnostic(output.split('\n').slice(-22).join('\n'));
  const summary = JSON.parse(readFileSync(json, 'utf8')) as FuzzSummary;
  assert.deepEqual(
    summary.harness.map((f) => `${f.target} case ${f.index}: ${f.error.slice(0, 300)} (${f.signature})`),
    [],
    `seed ${seed}: the fuzzer's own code failed (a bug in fuzz/, not a finding in mtt); reproduce: npm run fuzz -- --target NAME --seed ${seed} --case N`,
  );
  assert.deepEqual(
    summary.findings.map((f) => `${f.kind} in ${f.target} case ${f.index}: ${f.error.slice(0, 200)}`),
    [],
    `seed ${seed} found something; reproduce: npm run fuzz -- --seed ${seed} --seconds ${SECONDS}, or replay a case with npm run fuzz -- --target NAME --seed ${seed} --case N`,
  );
  assert.equal(code, 0, output.slice(-3000));
  // Every target ran, and the live server served the legitimate client to the end.
  for (const target of TARGETS) {
    const s = summary.targets.find((x) => x.name === target.name);
    assert.ok(s && s.cases > 0, `${target.name} ran no input`);
  }
  const live = summary.live as LiveSummary;
  assert.ok(live.handshakes > 0, 'the live server got no handshakes');
  assert.ok(live.serverAlive && live.finalProbeOk, 'the legitimate client did not get through at the end');
  assert.equal(live.probes.failed, 0);
  assert.equal(live.clientDisconnects, 0);
  assert.ok(
    live.session.cases > 0 && live.session.serverAlive && live.session.finalLoginOk,
    'the session servers did not serve to the end',
  );
});
