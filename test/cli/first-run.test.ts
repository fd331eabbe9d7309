/**
 * A first run never crashes: every command that writes a key or a file creates its folder (0700)
 * first. Each case starts from a fresh, empty HOME with no MTT_CONFIG_DIR or XDG_CONFIG_HOME.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../e2e/harness.js';
import { freshHome, homeEnv, runMtt, spawnMtt } from './run-mtt.js';

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

function noStack(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at |ENOENT|unexpected error/);
}

test('mtt keygen with a fresh HOME writes ~/.config/mtt/id_ed25519 in a new 0700 folder', async (t) => {
  const home = await freshHome(t);
  const r = await runMtt(['keygen'], { env: homeEnv(home), cwd: home });
  assert.equal(r.code, 0, r.stderr);
  noStack(r.stderr);
  const dir = join(home, '.config', 'mtt');
  assert.equal(await mode(dir), 0o700);
  assert.equal(await mode(join(dir, 'id_ed25519')), 0o600);
  assert.match(await readFile(join(dir, 'id_ed25519.pub'), 'utf8'), /^ssh-ed25519 AAAA/);
  assert.match(r.stdout, new RegExp(`Wrote ${join(dir, 'id_ed25519')} `));
});

test("the README's mtt keygen -f ~/.config/mtt/id_ed25519, and -f into missing folders", async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  const readme = await runMtt(['keygen', '-f', join(home, '.config/mtt/id_ed25519')], { env, cwd: home });
  assert.equal(readme.code, 0, readme.stderr);
  const deep = await runMtt(['keygen', '-f', 'a/b/c/key'], { env, cwd: home });
  assert.equal(deep.code, 0, deep.stderr);
  for (const d of ['a', 'a/b', 'a/b/c']) assert.equal(await mode(join(home, d)), 0o700, d);
  assert.equal(await mode(join(home, 'a/b/c/key')), 0o600);
});

test('a folder that cannot be created is one line naming it, not a stack trace', async (t) => {
  // A file where the folder should be fails even for root, so this holds on every machine.
  const home = await freshHome(t);
  await writeFile(join(home, 'file'), 'not a folder');
  const args = ['keygen', '-f', join(home, 'file', 'key')];
  const r = await runMtt([...args, '--log-format', 'pretty'], { env: homeEnv(home), cwd: home });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^mtt: cannot .*\/file\S* \(a part of the path is not a folder\); choose a path/m);
  noStack(r.stderr);
  // Not on a terminal, the same message is one JSON error line.
  const j = await runMtt(args, { env: homeEnv(home), cwd: home });
  assert.equal(j.code, 2);
  const line = JSON.parse(j.stderr) as { level: string; msg: string; code: string; exitCode: number };
  assert.deepEqual([line.level, line.code, line.exitCode], ['error', 'ENOTDIR', 2]);
  assert.equal(`mtt: ${line.msg}\n`, r.stderr);
});

test('mtt client with no identity in its config creates the default key in a fresh HOME', async (t) => {
  const home = await freshHome(t);
  const cfg = join(home, 'client.json');
  await writeFile(cfg, JSON.stringify({ server: `127.0.0.1:${await freePort()}`, tunnels: [] }));
  const r = await runMtt(['client', '--config', cfg, '--exit-on-failure'], { env: homeEnv(home), cwd: home });
  // The server is not there: exit 1 after the connection failed, with the key created before.
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /connection refused/);
  noStack(r.stderr);
  assert.equal(await mode(join(home, '.config/mtt')), 0o700);
  assert.equal(await mode(join(home, '.config/mtt/id_ed25519')), 0o600);
});

test('mtt allow with a fresh HOME creates the allow-list and its folder', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  assert.equal((await runMtt(['keygen', '-f', 'k'], { env, cwd: home })).code, 0);
  const r = await runMtt(['allow', 'k.pub'], { env, cwd: home });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Added SHA256:/);
  assert.equal(await mode(join(home, '.config/mtt')), 0o700);
  assert.match(await readFile(join(home, '.config/mtt/allowed_keys'), 'utf8'), /^ssh-ed25519 AAAA/);
  const other = await runMtt(['allow', 'k.pub', '--allowed-keys', 'new/dir/allowed'], { env, cwd: home });
  assert.equal(other.code, 0, other.stderr);
  assert.equal(await mode(join(home, 'new/dir')), 0o700);
});

test('mtt server with a fresh HOME creates its host key; --host-key and --allowed-keys in new folders', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  const plain = spawnMtt(t, ['server', '--host', '127.0.0.1', '--port', '0'], { env, cwd: home });
  await plain.waitFor('listening');
  assert.equal(await mode(join(home, '.config/mtt')), 0o700);
  assert.equal(await mode(join(home, '.config/mtt/host_key')), 0o600);
  assert.equal(await plain.stop(), 0);
  noStack(plain.stderr());

  const custom = spawnMtt(
    t,
    [
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--host-key',
      'keys/hk',
      '--allowed-keys',
      'lists/allowed',
    ],
    { env, cwd: home },
  );
  await custom.waitFor('listening');
  assert.equal(await mode(join(home, 'keys')), 0o700);
  assert.equal(await mode(join(home, 'lists')), 0o700);
  assert.equal(await mode(join(home, 'keys/hk')), 0o600);
  // The watched folder exists, so a key added now is picked up by the running server.
  assert.equal((await runMtt(['keygen', '-f', 'c'], { env, cwd: home })).code, 0);
  assert.equal(
    (await runMtt(['allow', 'c.pub', '--allowed-keys', 'lists/allowed'], { env, cwd: home })).code,
    0,
  );
  await custom.waitFor(/allow-list loaded/);
  assert.equal(await custom.stop(), 0);
  noStack(custom.stderr());
});

test('an existing folder keeps its mode: mtt never chmods what a person set up', async (t) => {
  const home = await freshHome(t);
  await mkdir(join(home, 'shared'), { mode: 0o755 });
  await chmod(join(home, 'shared'), 0o755);
  const r = await runMtt(['keygen', '-f', 'shared/key'], { env: homeEnv(home), cwd: home });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mode(join(home, 'shared')), 0o755);
  assert.equal(await mode(join(home, 'shared/key')), 0o600);
});
