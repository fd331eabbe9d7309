/** The `mtt` command as a user runs it: exit codes and one clear line for each mistake. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, listen } from '../e2e/harness.js';
import { spawnMtt } from './run-mtt.js';

const MTT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function mtt(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MTT, ...args],
      { env: { ...process.env, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'mtt-cli-'));
}

/**
 * A user's mistake: exit 2 and, as the last line on stderr (not a terminal here, so JSON), one error
 * line with the message and no stack trace; with --log-format pretty the same as one `mtt:` line.
 */
function oneLine(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  const errors = lines
    .map((l) => JSON.parse(l) as { level: string; msg: string })
    .filter((l) => l.level === 'error');
  assert.equal(errors.length, 1, r.stderr);
  assert.equal(JSON.parse(lines.at(-1)!).msg, errors[0]!.msg);
  assert.match(errors[0]!.msg, pattern);
  assert.doesNotMatch(r.stderr, /\\n\s+at /);
}

/** The same mistake asked for in pretty format: one `mtt:` line. */
function onePrettyLine(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  const said = lines.filter((l) => l.startsWith('mtt: '));
  assert.equal(said.length, 1, r.stderr);
  assert.equal(lines.at(-1), said[0]);
  assert.match(said[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

test('--help works on every command', async () => {
  for (const cmd of [[], ['server'], ['client'], ['keygen'], ['allow'], ['demo'], ['gui']]) {
    const r = await mtt([...cmd, '--help']);
    assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /Usage: mtt/);
  }
});

test('an unknown command or flag gets one clear line', async () => {
  oneLine(await mtt(['serve']), /unknown command "serve"; run mtt --help/);
  oneLine(await mtt(['server', '--prot', '9000']), /Unknown option '--prot'.*--help/);
  oneLine(await mtt(['server', '--allow-ports', '10-5']), /--allow-ports/);
  oneLine(await mtt(['server', '--port', 'abc']), /--port must be a port number/);
  oneLine(await mtt(['client']), /--config FILE or --server HOST:PORT -R PUBLIC_PORT:HOST:PORT is required/);
  onePrettyLine(await mtt(['serve', '--log-format', 'pretty']), /^mtt: unknown command "serve"/);
  onePrettyLine(
    await mtt(['server', '--log-format', 'pretty', '--port', 'abc']),
    /--port must be a port number/,
  );
});

test('keygen writes an OpenSSH key pair, prints the fingerprint, refuses to overwrite', async () => {
  const dir = await tmp();
  const path = join(dir, 'id');
  const r = await mtt(['keygen', '-f', path, '-C', 'me@test']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Fingerprint: SHA256:[A-Za-z0-9+/]{43}/);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.match(await readFile(`${path}.pub`, 'utf8'), /^ssh-ed25519 AAAA\S+ me@test\n$/);
  oneLine(await mtt(['keygen', '-f', path]), /exists.*--force/);
  assert.equal((await mtt(['keygen', '-f', path, '--force'])).code, 0);
});

test('allow adds a key once, with optional permitlisten', async () => {
  const dir = await tmp();
  await mtt(['keygen', '-f', join(dir, 'k')]);
  const list = join(dir, 'allowed');
  const a = await mtt([
    'allow',
    join(dir, 'k.pub'),
    '--allowed-keys',
    list,
    '--permit-listen',
    '8080,9000-9010',
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /Added SHA256:/);
  const b = await mtt(['allow', join(dir, 'k.pub'), '--allowed-keys', list]);
  assert.match(b.stdout, /already in/);
  assert.match(await readFile(list, 'utf8'), /^permitlisten="8080,9000-9010" ssh-ed25519 /m);
  oneLine(await mtt(['allow', 'ssh-rsa AAAAB3 x', '--allowed-keys', list]), /ssh-ed25519/);
});

test('a bad config file is rejected before anything starts, each wrong field named', async () => {
  const dir = await tmp();
  const cfg = join(dir, 'c.json');
  await writeFile(
    cfg,
    JSON.stringify({ server: 'x', tunnels: [{ name: 'a b', remotePort: 0, localPort: 1 }] }),
  );
  const r = await mtt(['client', '--config', cfg, '--log-format', 'pretty'], { MTT_CONFIG_DIR: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /server: server address must be "host:port"/);
  assert.match(r.stderr, /tunnels\[0\]\.name: name must be/);
  assert.match(r.stderr, /tunnels\[0\]\.remotePort/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  // The same list as one JSON error line when not on a terminal.
  const j = await mtt(['client', '--config', cfg], { MTT_CONFIG_DIR: dir });
  assert.equal(j.code, 2);
  const line = JSON.parse(j.stderr.trim().split('\n').at(-1)!) as { msg: string; level: string };
  assert.equal(line.level, 'error');
  assert.equal(`mtt: ${line.msg}\n`, r.stderr.slice(r.stderr.indexOf('mtt: ')));
});

test('a control port in use is one line', async (t) => {
  const dir = await tmp();
  const busy = await listen(t, () => {});
  oneLine(
    await mtt(['server', '--host', '127.0.0.1', '--port', String(busy.port)], { MTT_CONFIG_DIR: dir }),
    /already in use; choose another port/,
  );
});

test('--exit-on-failure: an unreachable server and a rejected key end the client with status 1', async (t) => {
  const dir = await tmp();
  const port = await freePort();
  const cfg = join(dir, 'c.json');
  await writeFile(cfg, JSON.stringify({ server: `127.0.0.1:${port}`, tunnels: [] }));
  const r = await mtt(['client', '--config', cfg, '--exit-on-failure'], { MTT_CONFIG_DIR: dir });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /connection to 127\.0\.0\.1:\d+ failed: connection refused \(is the server running\?\)/,
  );

  // A server that does not know this client's key.
  const server = spawnMtt(t, ['server', '--host', '127.0.0.1', '--port', String(port)], {
    env: { ...process.env, MTT_CONFIG_DIR: join(dir, 'server') },
  });
  await server.waitFor('"msg":"mtt server ready"');
  const rejected = await mtt(['client', '--config', cfg, '--exit-on-failure'], { MTT_CONFIG_DIR: dir });
  assert.equal(rejected.code, 1);
  assert.match(rejected.stderr, /unknown_key/);
  // The client logged its public key line, ready for `mtt allow` (JSON: stdout stays empty).
  assert.equal(rejected.stdout, '');
  assert.match(rejected.stderr, /"allowCommand":"mtt allow 'ssh-ed25519 AAAA/);
  assert.equal(await server.stop(), 0);
});

test('the demo runs, serves through its tunnel and stops cleanly on SIGINT', async () => {
  const child = spawn(
    process.execPath,
    [MTT, 'demo', '--log-format', 'pretty', '--public-port', String(await freePort())],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  while (!out.includes('Stop it')) await once(child.stdout, 'data');
  const url = /curl (http:\/\/\S+)/.exec(out)![1]!;
  const res = await fetch(url);
  assert.match(await res.text(), /Hello from the LAN service behind mtt/);
  child.kill('SIGINT');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0);
  assert.match(out, /stopped; the service answered 1 request/);
});
