/**
 * docs/BENCHMARKS.md as --write-docs rewrites it: one profile's results change, and everything written
 * by hand or by another tool (the analysis, the other profile's results, another tool's section) is kept.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MachineFacts } from '../../bench/lib/machine.js';
import {
  benchmarksDoc,
  DOC_PROFILES,
  keptAnalysis,
  keptOtherSections,
  keptSection,
} from '../../bench/lib/report.js';

const machine: MachineFacts = {
  nproc: 2,
  cpuModel: 'a CPU',
  memory: '1.0 GiB',
  kernel: 'Linux',
  os: 'Debian',
  node: 'v24.0.0',
  openssh: undefined,
  iperf3: undefined,
  wrk: undefined,
  nginx: 'nginx/1.22.1',
  nofileLimit: 1024,
};

/** What run.ts does with --write-docs for `profile`. */
function rewrite(old: string, profile: (typeof DOC_PROFILES)[number], section: string): string {
  const sections = Object.fromEntries(DOC_PROFILES.map((name) => [name, keptSection(old, name)]));
  sections[profile] = section;
  return benchmarksDoc({
    sections,
    machine,
    corpus: 'a corpus',
    analysis: keptAnalysis(old),
    others: keptOtherSections(old),
  });
}

test('a rewrite of one profile keeps the other profile, the analysis and other tools’ sections', () => {
  const soak = [
    '<!-- soak: written by npm run soak -->',
    '## Soak',
    '',
    '30 minutes, heap after GC flat.',
    '<!-- end of soak -->',
  ].join('\n');
  let page = rewrite('', 'loopback', 'LOOPBACK ONE');
  page = rewrite(page, 'wan', 'WAN ONE');
  page = page.replace('(no analysis yet)', 'Hand-written words.');
  page = `${page}\n${soak}\n`;

  const next = rewrite(page, 'loopback', 'LOOPBACK TWO');
  assert.equal(keptSection(next, 'loopback')?.trim(), 'LOOPBACK TWO');
  assert.equal(keptSection(next, 'wan')?.trim(), 'WAN ONE');
  assert.equal(keptAnalysis(next)?.trim(), 'Hand-written words.');
  assert.deepEqual(keptOtherSections(next), [soak]);
  assert.ok(!next.includes('LOOPBACK ONE'), 'the old results are gone');
  // A second rewrite neither loses nor doubles the kept section.
  const again = rewrite(next, 'wan', 'WAN TWO');
  assert.equal(again.split('<!-- soak:').length, 2);
  assert.ok(again.indexOf('<!-- soak:') > again.indexOf('<!-- end of analysis -->'), 'after the analysis');
  assert.match(again, /nginx\/1\.22\.1/, 'the machine table names nginx');
});
