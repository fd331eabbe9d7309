/**
 * The test tiers of docs/ARCHITECTURE.md ("Tests in tiers"): `npm test` runs everything under test/
 * but test/system, and `npm run test:system` runs test/system. The lower tiers must not need what only
 * the system tier's machine has, so no test outside test/system imports a module of test/system or
 * names one of the programs only the system tests use (move such a test to test/system).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TEST = join(ROOT, 'test');

/** Programs (and the browser driver) that only the system tests use; `.ci/run` installs them all. */
const SYSTEM_ONLY = [
  'chromium',
  'playwright-core',
  'dbus-daemon',
  'dbus-run-session',
  'gdbus',
  'Xvfb',
  'xfce4-panel',
  'xfce4-notifyd',
  'xfwm4',
  'xdotool',
  'xwininfo',
  'desktop-file-validate',
  'nft',
  'tc',
  'gcc',
  'podman',
  'runc',
  'debootstrap',
  'systemd-analyze',
  'promtool',
  'prometheus',
];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

const lower = tsFiles(TEST).filter((f) => !relative(TEST, f).startsWith('system/'));

test('npm test runs every test but test/system; npm run test:system runs test/system', () => {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.match(scripts.test!, /find dist\/test -path dist\/test\/system -prune -o -name '\*\.test\.js'/);
  assert.match(scripts['test:system']!, /find dist\/test\/system -name '\*\.test\.js'/);
  assert.ok(lower.length > 50, `only ${lower.length} files found under ${TEST}`);
});

test('no test outside test/system imports from it', () => {
  const found = lower.filter((f) => /from\s*['"](?:\.\.\/)+system\//.test(readFileSync(f, 'utf8')));
  assert.deepEqual(
    found.map((f) => relative(ROOT, f)),
    [],
  );
});

test('no test outside test/system names a program only the system tests use', () => {
  const literal = new RegExp(`['"\`](${SYSTEM_ONLY.join('|')})['"\`]`, 'g');
  // This file names them to look for them.
  const self = join(TEST, 'architecture', 'test-tiers.test.ts');
  const found = lower
    .filter((f) => f !== self)
    .flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(literal)].map((m) => `${relative(ROOT, f)}: ${m[1]}`),
    );
  assert.deepEqual(found, []);
});

test('the program check sees a quoted program name', () => {
  const literal = new RegExp(`['"\`](${SYSTEM_ONLY.join('|')})['"\`]`);
  assert.ok(literal.test("spawn('gdbus', ['call'])"));
  assert.ok(literal.test("import { chromium } from 'playwright-core';"));
  assert.ok(!literal.test('await pair.server.metrics.prometheus()'));
});
