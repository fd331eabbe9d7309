import assert from 'node:assert/strict';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  appendToAllowList,
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  IdentityError,
  loadAllowList,
  parseAllowList,
} from '../../src/identity/index.js';
import { tempDir } from './helpers.js';

const a = generateIdentity('alice');
const b = generateIdentity('bob');
const c = generateIdentity('carol');
const lineA = formatPublicKeyLine(a.publicRaw, 'alice@laptop');
const lineB = formatPublicKeyLine(b.publicRaw);
const lineC = formatPublicKeyLine(c.publicRaw, 'carol');

/** Assert that parsing throws ERR_ALLOWLIST_SYNTAX starting with FILE:LINE and containing `fragment`. */
function assertSyntax(text: string, line: number, fragment: string | RegExp): void {
  assert.throws(
    () => parseAllowList(text, 'allowed_keys'),
    (error: unknown) => {
      assert.ok(error instanceof IdentityError);
      assert.equal(error.code, 'ERR_ALLOWLIST_SYNTAX');
      assert.ok(error.message.startsWith(`allowed_keys:${line}: `), error.message);
      assert.match(
        error.message,
        typeof fragment === 'string' ? new RegExp(escapeRegExp(fragment)) : fragment,
      );
      assert.ok(!error.message.includes('\n'), 'one line');
      return true;
    },
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('comments, blank lines, trailing comments and CRLF are accepted', () => {
  const text = `# allowed clients\n\n   \n${lineA}\r\n  # indented comment\n${lineB}\n${lineC} # the build box\n`;
  const entries = parseAllowList(text, 'allowed_keys');
  assert.equal(entries.length, 3);
  assert.deepEqual(
    entries.map((e) => [e.line, e.comment]),
    [
      [4, 'alice@laptop'],
      [6, ''],
      [7, 'carol # the build box'],
    ],
  );
  assert.deepEqual(entries[0]?.publicRaw, a.publicRaw);
  assert.equal(entries[0]?.fingerprint, fingerprint(a.publicRaw));
  assert.deepEqual(entries[0]?.options.permitListen, [{ low: 1, high: 65535 }]);
});

test('permitlisten options: single, range, repeated, star, case-insensitive', () => {
  const text = [
    `permitlisten="8080" ${lineA}`,
    `permitlisten="10000-10100",PermitListen="2222" ${lineB}`,
    `permitlisten="*" ${lineC}`,
  ].join('\n');
  const [ea, eb, ec] = parseAllowList(text, 'f');
  assert.deepEqual(ea?.options.permitListen, [{ low: 8080, high: 8080 }]);
  assert.equal(ea?.comment, 'alice@laptop');
  assert.deepEqual(eb?.options.permitListen, [
    { low: 10000, high: 10100 },
    { low: 2222, high: 2222 },
  ]);
  assert.deepEqual(ec?.options.permitListen, [{ low: 1, high: 65535 }]);
});

test('malformed lines give FILE:LINE and the fix', () => {
  assertSyntax(`# ok\n${lineA}\nssh-ed25519 AAAA!!notbase64 x\n`, 3, 'not valid base64');
  assertSyntax(
    `\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x`,
    2,
    /"ssh-rsa" is not supported; use an ssh-ed25519 key/,
  );
  assertSyntax(
    `no-pty ${lineA}`,
    1,
    /unknown option "no-pty"; the options are permitlisten=.*, permitfrom=.*, maxconnections=.* and ratelimit=/,
  );
  assertSyntax(
    `${lineA}\n${lineB}\n${formatPublicKeyLine(a.publicRaw, 'again')}`,
    3,
    /already listed on line 1/,
  );
  assertSyntax(`permitlisten="80-x" ${lineA}`, 1, /"80-x" .* is not a port or range/);
  assertSyntax(`permitlisten="0" ${lineA}`, 1, 'out of range');
  assertSyntax(`permitlisten=8080 ${lineA}`, 1, 'not in double quotes');
  assertSyntax(`permitlisten="8080 ${lineA}`, 1, 'no closing quote');
  assertSyntax(`permitlisten ${lineA}`, 1, 'needs a value');
  assertSyntax(`permitlisten="8080"`, 1, 'not followed by a key');
  assertSyntax(`ssh-ed25519`, 1, 'key data is missing');
  assertSyntax(lineA.slice('ssh-ed25519 '.length), 1, 'key type is missing');
});

test('loadAllowList reports a missing file instead of deciding', async () => {
  const dir = await tempDir();
  assert.deepEqual(await loadAllowList(join(dir, 'none')), { entries: [], exists: false });
  const path = join(dir, 'allowed_keys');
  await writeFile(path, `${lineA}\n`, { mode: 0o600 });
  const loaded = await loadAllowList(path);
  assert.equal(loaded.exists, true);
  assert.equal(loaded.entries.length, 1);
  await writeFile(path, `${lineA}\nbogus\n`);
  await assert.rejects(loadAllowList(path), {
    code: 'ERR_ALLOWLIST_SYNTAX',
    message: new RegExp(`^${path}:2: `),
  });
});

test('loadAllowList refuses a list that others can change', {
  skip: process.platform === 'win32',
}, async () => {
  const dir = await tempDir();
  const path = join(dir, 'allowed_keys');
  await writeFile(path, `${lineA}\n`);
  await chmod(path, 0o666);
  await assert.rejects(loadAllowList(path), { code: 'ERR_KEY_PERMISSIONS', message: /run: chmod 600 / });
});

test('appendToAllowList creates 0600, adds, keeps old content and skips a present key', async () => {
  const dir = await tempDir();
  const path = join(dir, 'sub', 'allowed_keys');
  assert.equal(await appendToAllowList(path, `${lineA}\n`), 'added');
  if (process.platform !== 'win32') assert.equal((await stat(path)).mode & 0o777, 0o600);
  await writeFile(path, `# team\n${lineA}`); // no trailing newline
  assert.equal(await appendToAllowList(path, `permitlisten="9000" ${lineB}`), 'added');
  assert.equal(await appendToAllowList(path, formatPublicKeyLine(a.publicRaw, 'other comment')), 'exists');
  assert.equal(await readFile(path, 'utf8'), `# team\n${lineA}\npermitlisten="9000" ${lineB}\n`);
  const entries = parseAllowList(await readFile(path, 'utf8'), path);
  assert.deepEqual(entries[1]?.options.permitListen, [{ low: 9000, high: 9000 }]);
});

test('appendToAllowList validates the key and refuses to extend a broken file', async () => {
  const dir = await tempDir();
  const path = join(dir, 'allowed_keys');
  await assert.rejects(appendToAllowList(path, 'ssh-rsa AAAA'), {
    code: 'ERR_KEY_FORMAT',
    message: /not supported/,
  });
  await assert.rejects(appendToAllowList(path, `${lineA}\n${lineB}`), {
    message: /exactly one public key line, got 2/,
  });
  await writeFile(path, 'garbage line\n', { mode: 0o600 });
  await assert.rejects(appendToAllowList(path, lineB), { code: 'ERR_ALLOWLIST_SYNTAX' });
  assert.equal(await readFile(path, 'utf8'), 'garbage line\n');
});
