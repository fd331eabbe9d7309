/**
 * deploy/systemd: both units pass `systemd-analyze verify` without a warning and score at most 4.5
 * ("OK") on `systemd-analyze security --offline=yes` (Debian's systemd package; no systemd needs to
 * run), and each unit's ExecStart line, with its Environment= and example config file, starts a
 * real mtt that writes its state where the unit's StateDirectory= is.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MTT, spawnMtt } from '../../cli/run-mtt.js';
import { freePort } from '../../e2e/harness.js';
import { findProgram } from '../lib/netns.js';
import { REPO } from './newcomer.js';

const UNITS = ['mtt-server.service', 'mtt-client.service'];
const DIR = join(REPO, 'deploy/systemd');
const MAX_EXPOSURE = 4.5;

function analyze(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = findProgram('systemd-analyze');
  if (!bin) throw new Error('systemd-analyze is missing: apt-get install -y --no-install-recommends systemd');
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** `Key=value` lines of a unit's [Service] section (repeated keys in order). */
function serviceSettings(unit: string): Array<[string, string]> {
  const text = readFileSync(join(DIR, unit), 'utf8');
  const section = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  return section
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]);
}

for (const unit of UNITS) {
  test(`${unit}: systemd-analyze security scores at most ${MAX_EXPOSURE}`, async () => {
    const r = await analyze(['security', '--offline=yes', join(DIR, unit)]);
    const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
    assert.ok(m, r.stdout + r.stderr);
    process.stdout.write(`# ${unit}: exposure ${m[1]} ${m[2]}\n`);
    assert.ok(Number(m[1]) <= MAX_EXPOSURE, `${unit} scores ${m[1]}:\n${r.stdout}`);
  });
}

test('both units pass systemd-analyze verify with no warning', async (t) => {
  // A root with the system's own units and an executable where npm install -g puts mtt.
  const root = mkdtempSync(join(tmpdir(), `mtt-systemd-${process.pid}-`));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  copyFileSync(MTT, join(root, 'usr/local/bin/mtt'));
  chmodSync(join(root, 'usr/local/bin/mtt'), 0o755);
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  for (const unit of UNITS) copyFileSync(join(DIR, unit), join(root, 'etc/systemd/system', unit));
  const r = await analyze(['verify', `--root=${root}`, ...UNITS]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout + r.stderr, '', 'no warnings');
  // A broken unit is caught, so the check is real.
  writeFileSync(
    join(root, 'etc/systemd/system/mtt-server.service'),
    `${readFileSync(join(DIR, UNITS[0]!), 'utf8')}\n[Service]\nNoSuchSetting=1\n`,
  );
  const bad = await analyze(['verify', `--root=${root}`, UNITS[0]!]);
  assert.match(bad.stdout + bad.stderr, /Unknown key 'NoSuchSetting'/);
});

/** The unit's ExecStart and Environment with /etc, /var/lib and /usr/local moved under `root`. */
function commandOf(unit: string, root: string, rewrite: (s: string) => string) {
  const settings = serviceSettings(unit);
  const exec = settings.find(([k]) => k === 'ExecStart')![1].split(/\s+/);
  assert.equal(exec[0], '/usr/local/bin/mtt', 'the path npm install -g (prefix /usr/local) gives');
  const env: Record<string, string> = {};
  for (const [k, v] of settings) {
    if (k !== 'Environment') continue;
    const [name, value] = v.split('=') as [string, string];
    env[name] = rewrite(value);
  }
  for (const [k, v] of settings) {
    if (k === 'StateDirectory') mkdirSync(join(root, 'var/lib', v), { recursive: true, mode: 0o700 });
  }
  return { args: exec.slice(1).map(rewrite), env };
}

test("the units' command lines start mtt with the example configs, state in StateDirectory", async (t) => {
  const root = mkdtempSync(join(tmpdir(), `mtt-systemd-run-${process.pid}-`));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const rewrite = (s: string) =>
    s.replaceAll('/etc/', `${root}/etc/`).replaceAll('/var/lib/', `${root}/var/lib/`);
  const port = await freePort();

  // Server: /etc/mtt/server.json from the example, a port free here, an empty 0644 allow-list.
  mkdirSync(join(root, 'etc/mtt'), { recursive: true });
  const serverCfg = JSON.parse(readFileSync(join(DIR, 'server.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(serverCfg.hostKey, '/var/lib/mtt/host_key');
  assert.equal(serverCfg.allowedKeys, '/etc/mtt/allowed_keys');
  writeFileSync(
    join(root, 'etc/mtt/server.json'),
    JSON.stringify({
      ...serverCfg,
      port,
      host: '127.0.0.1',
      hostKey: rewrite(String(serverCfg.hostKey)),
      allowedKeys: rewrite(String(serverCfg.allowedKeys)),
    }),
  );
  writeFileSync(join(root, 'etc/mtt/allowed_keys'), '', { mode: 0o644 });
  const s = commandOf('mtt-server.service', root, rewrite);
  const server = spawnMtt(t, s.args, { env: { ...process.env, ...s.env } });
  await server.waitFor('"msg":"mtt server ready"');
  assert.equal(statSync(join(root, 'var/lib/mtt/host_key')).mode & 0o777, 0o600);
  const fingerprint = /"fingerprint":"(SHA256:[^"]+)"/.exec(server.stderr())![1]!;

  // Client: /etc/mtt-client/client.json from the example, pointed at that server; its key is
  // created in its StateDirectory (MTT_CONFIG_DIR) on first start.
  mkdirSync(join(root, 'etc/mtt-client'), { recursive: true });
  const clientCfg = JSON.parse(readFileSync(join(DIR, 'client.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(
    join(root, 'etc/mtt-client/client.json'),
    JSON.stringify({ ...clientCfg, server: `127.0.0.1:${port}`, serverKey: fingerprint }),
  );
  const c = commandOf('mtt-client.service', root, rewrite);
  const client = spawnMtt(t, c.args, { env: { ...process.env, ...c.env } });
  await client.waitFor('"msg":"mtt client started"');
  assert.ok(existsSync(join(root, 'var/lib/mtt-client/id_ed25519')));
  // Not yet allowed: the server refuses it, and the client keeps trying (systemd need not restart it).
  await client.waitFor(/unknown_key/);
  assert.equal(client.child.exitCode, null);
  assert.equal(await client.stop(), 0);
  assert.equal(await server.stop(), 0);
});
