/**
 * What mtt writes where: on a terminal human lines (dated log lines, the banner on stdout); otherwise
 * JSON lines only, all on stderr; --log-level and --log-format honoured by every command; nothing a
 * file or a peer supplied reaches a terminal with its control characters raw.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../e2e/harness.js';
import { freshHome, homeEnv, runMtt, runMttOnTty, spawnMtt } from './run-mtt.js';

const PRETTY_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO |WARN |ERROR) \S/;

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return assert.fail(`not a JSON line: ${l}`);
      }
    });
}

test('not on a terminal, mtt server writes only JSON lines on stderr, the banner as one of them', async (t) => {
  const home = await freshHome(t);
  const server = spawnMtt(t, ['server', '--host', '127.0.0.1', '--port', '0'], { env: homeEnv(home) });
  await server.waitFor('"msg":"mtt server ready"');
  assert.equal(await server.stop(), 0);
  assert.equal(server.stdout(), '');
  const lines = jsonLines(server.stderr());
  const ready = lines.find((l) => l.msg === 'mtt server ready')!;
  assert.match(String(ready.serverKey), /^ssh-ed25519 AAAA\S+/);
  assert.match(String(ready.fingerprint), /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.match(String(ready.control), /^127\.0\.0\.1:\d+$/);
  for (const l of lines) assert.match(String(l.time), /^\d{4}-\d\d-\d\dT/);
});

test('--log-format pretty when piped: the banner on stdout, dated human lines on stderr', async (t) => {
  const home = await freshHome(t);
  const server = spawnMtt(t, ['server', '--host', '127.0.0.1', '--port', '0', '--log-format', 'pretty'], {
    env: homeEnv(home),
  });
  await server.waitFor('Put the server key line');
  assert.equal(await server.stop(), 0);
  assert.match(server.stdout(), /^mtt server listening on 127\.0\.0\.1:\d+\n {2}server key: {2}ssh-ed25519 /);
  const logLines = server.stderr().trim().split('\n');
  assert.ok(logLines.length >= 2, server.stderr());
  for (const l of logLines) assert.match(l, PRETTY_LINE);
  // --log-format json on a terminal would be the mirror case; --log-level is honoured either way.
  const quiet = spawnMtt(t, ['server', '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn'], {
    env: homeEnv(home),
  });
  await quiet.waitFor('"msg":"mtt server ready"');
  assert.equal(await quiet.stop(), 0);
  const lines = jsonLines(quiet.stderr());
  // Only the banner (which is what the user asked the command for) is below warn.
  assert.deepEqual(
    lines.filter((l) => l.level !== 'warn' && l.level !== 'error').map((l) => l.msg),
    ['mtt server ready'],
  );
  assert.ok(
    lines.some((l) => l.level === 'warn'),
    'the empty allow-list warning still shows',
  );
});

test('on a terminal: dated pretty log lines, the human banner, and the last error as an mtt: line', async (t) => {
  const home = await freshHome(t);
  const cfg = join(home, 'client.json');
  const port = await freePort();
  await writeFile(cfg, JSON.stringify({ server: `127.0.0.1:${port}`, tunnels: [] }));
  const r = await runMttOnTty(['client', '--config', cfg, '--exit-on-failure'], { env: homeEnv(home) });
  assert.equal(r.code, 1, r.output);
  const lines = r.output.trim().split('\n');
  assert.match(lines[0]!, PRETTY_LINE);
  assert.match(lines[0]!, /created a client identity key/);
  assert.ok(lines.includes(`mtt client for 127.0.0.1:${port}`), r.output);
  assert.match(r.output, /The server admin allows this client with: mtt allow 'ssh-ed25519 AAAA/);
  assert.match(lines.at(-1)!, /^mtt: connection to 127\.0\.0\.1:\d+ failed: connection refused/);
  assert.doesNotMatch(r.output, /^\{/m);
});

test("--exit-on-failure's last error is a JSON line when not on a terminal", async (t) => {
  const home = await freshHome(t);
  const cfg = join(home, 'client.json');
  await writeFile(cfg, JSON.stringify({ server: `127.0.0.1:${await freePort()}`, tunnels: [] }));
  const r = await runMtt(['client', '--config', cfg, '--exit-on-failure'], { env: homeEnv(home) });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const lines = jsonLines(r.stderr);
  const last = lines.at(-1)!;
  assert.equal(last.level, 'error');
  assert.equal(last.exitCode, 1);
  assert.match(String(last.msg), /connection to 127\.0\.0\.1:\d+ failed: connection refused/);
  assert.ok(
    lines.some((l) => l.msg === 'mtt client started' && String(l.allowCommand).startsWith('mtt allow ')),
  );
});

test('mtt gui honours --log-level and --log-format', async (t) => {
  const home = await freshHome(t);
  const cfg = join(home, 'client.json');
  await writeFile(cfg, JSON.stringify({ server: `127.0.0.1:${await freePort()}`, tunnels: [] }));
  // No session bus: the GUI warns that it runs without a tray, a line that --log-level error hides.
  const env = homeEnv(home, { DBUS_SESSION_BUS_ADDRESS: '' });
  const loud = spawnMtt(t, ['gui', '--config', cfg, '--no-window', '--log-format', 'json'], { env });
  await loud.waitFor(/"level":"warn","msg":"no D-Bus session bus/);
  await loud.stop();
  const quiet = spawnMtt(t, ['gui', '--config', cfg, '--no-window', '--log-level', 'error'], { env });
  await quiet.waitFor('Dashboard: http://127.0.0.1:');
  await quiet.stop();
  assert.doesNotMatch(quiet.stderr(), /"level":"(warn|info|debug)"/);
  const pretty = spawnMtt(t, ['gui', '--config', cfg, '--no-window', '--log-format', 'pretty'], { env });
  await pretty.waitFor(/WARN {2}no D-Bus session bus/);
  await pretty.stop();
  for (const l of pretty.stderr().trim().split('\n')) assert.match(l, PRETTY_LINE);
  const bad = await runMtt(['gui', '--config', cfg, '--log-level', 'loud'], { env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--log-level must be debug, info, warn or error, not \\"loud\\"/);
});

test('every command takes --log-level and --log-format, and checks their values', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  for (const cmd of [['keygen'], ['allow', 'x.pub'], ['client'], ['server'], ['demo'], ['gui']]) {
    const r = await runMtt([...cmd, '--log-format', 'xml'], { env, cwd: home });
    assert.equal(r.code, 2, `${cmd[0]}: ${r.stderr}`);
    assert.match(r.stderr, /--log-format must be json or pretty/, cmd[0]);
  }
  const ok = await runMtt(['keygen', '-f', 'k', '--log-level', 'debug', '--log-format', 'json'], {
    env,
    cwd: home,
  });
  assert.equal(ok.code, 0, ok.stderr);
});

test('control characters from files and arguments are escaped in errors, and refused in key comments', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  const evil = join(home, 'evil\x1b]0;pwned\x07\x9b2J.pub');
  const pretty = await runMtt(['allow', evil, '--log-format', 'pretty'], { env, cwd: home });
  assert.equal(pretty.code, 2);
  assert.doesNotMatch(pretty.stderr, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  assert.match(pretty.stderr, /evil\\x1b\]0;pwned\\x07\\x9b2J\.pub/);
  const json = await runMtt(['allow', evil], { env, cwd: home });
  assert.doesNotMatch(json.stderr, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  assert.match(JSON.parse(json.stderr).msg as string, /evil\x1b\]0;pwned\x07\x9b2J/);

  // mtt allow refuses a key whose comment carries control characters (C0 or C1), naming it escaped.
  assert.equal((await runMtt(['keygen', '-f', 'k'], { env, cwd: home })).code, 0);
  const { readFile } = await import('node:fs/promises');
  const keyData = (await readFile(join(home, 'k.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  for (const comment of ['me\x1b[31m', 'me\x9b31m', 'me\u202egpj']) {
    await writeFile(join(home, 'bad.pub'), `${keyData} ${comment}\n`);
    const r = await runMtt(['allow', 'bad.pub', '--log-format', 'pretty'], { env, cwd: home });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /comment "me\\(x1b|x9b|u202e).*" contains control characters/);
  }
  // And keygen refuses such a comment too.
  const k = await runMtt(['keygen', '-f', 'k2', '-C', 'me\x9b', '--log-format', 'pretty'], {
    env,
    cwd: home,
  });
  assert.equal(k.code, 2);
  assert.match(k.stderr, /comment "me\\x9b" contains control characters/);
});
