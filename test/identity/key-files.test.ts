import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fingerprint,
  formatPrivateKeyFile,
  formatPublicKeyLine,
  generateIdentity,
  IdentityError,
  loadIdentity,
  loadOrCreateHostKey,
  parsePublicKeyLine,
  writeIdentityFiles,
} from '../../src/identity/index.js';
import { requireSshKeygen, SSH_KEYGEN, tempDir } from './helpers.js';

const posix = process.platform !== 'win32';

function keygen(...args: string[]): string {
  requireSshKeygen();
  return execFileSync(SSH_KEYGEN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('writeIdentityFiles writes PATH 0600 and PATH.pub 0644, and loadIdentity reads it back', async () => {
  const dir = await tempDir();
  const path = join(dir, 'id_mtt');
  const identity = generateIdentity('me@box');
  await writeIdentityFiles(path, identity);
  if (posix) {
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(`${path}.pub`)).mode & 0o777, 0o644);
  }
  assert.equal(
    await readFile(`${path}.pub`, 'utf8'),
    `${formatPublicKeyLine(identity.publicRaw, 'me@box')}\n`,
  );
  const loaded = await loadIdentity(path);
  assert.deepEqual(loaded.publicRaw, identity.publicRaw);
  assert.equal(loaded.comment, 'me@box');
  assert.deepEqual((await readdir(dir)).sort(), ['id_mtt', 'id_mtt.pub']);
});

test('writeIdentityFiles refuses to overwrite PATH or PATH.pub without force', async () => {
  const dir = await tempDir();
  const path = join(dir, 'id');
  const first = generateIdentity('first');
  await writeIdentityFiles(path, first);
  await assert.rejects(writeIdentityFiles(path, generateIdentity()), (error: unknown) => {
    assert.ok(error instanceof IdentityError);
    assert.equal(error.code, 'ERR_KEY_EXISTS');
    assert.match(error.message, /already exists; pass --force/);
    return true;
  });
  assert.deepEqual((await loadIdentity(path)).publicRaw, first.publicRaw);

  const lonelyPub = join(dir, 'other');
  await writeFile(`${lonelyPub}.pub`, 'x');
  await assert.rejects(writeIdentityFiles(lonelyPub, generateIdentity()), { code: 'ERR_KEY_EXISTS' });

  const second = generateIdentity('second');
  await writeIdentityFiles(path, second, { force: true });
  assert.deepEqual((await loadIdentity(path)).publicRaw, second.publicRaw);
});

test('our fingerprint and public key match ssh-keygen on our files', async () => {
  const dir = await tempDir();
  const path = join(dir, 'id');
  const identity = generateIdentity('compat test');
  await writeIdentityFiles(path, identity);
  // ssh-keygen -l prints "256 SHA256:… comment (ED25519)".
  const listed = keygen('-l', '-f', `${path}.pub`).trim();
  assert.equal(listed, `256 ${fingerprint(identity.publicRaw)} compat test (ED25519)`);
  assert.equal(keygen('-l', '-f', path).trim(), listed);
  // -y reads our private key file and derives the public key from it.
  const derived = parsePublicKeyLine(keygen('-y', '-f', path));
  assert.deepEqual(derived.publicRaw, identity.publicRaw);
});

test('a key made by ssh-keygen loads and matches its .pub, byte for byte', async () => {
  const dir = await tempDir();
  const path = join(dir, 'from-ssh-keygen');
  keygen('-t', 'ed25519', '-N', '', '-C', 'test', '-f', path, '-q');
  const identity = await loadIdentity(path);
  const pubLine = (await readFile(`${path}.pub`, 'utf8')).trim();
  assert.equal(formatPublicKeyLine(identity.publicRaw, identity.comment), pubLine);
  // Re-encoding it gives ssh-keygen's bytes, except the two random check numbers.
  const decode = (text: string) => Buffer.from(text.trim().split('\n').slice(1, -1).join(''), 'base64');
  const theirs = decode(await readFile(path, 'utf8'));
  const ours = decode(formatPrivateKeyFile(identity));
  assert.equal(ours.length, theirs.length);
  const differing = [...ours.keys()].filter((i) => ours[i] !== theirs[i]);
  assert.ok(
    differing.length === 0 || differing.at(-1)! - differing[0]! < 8,
    `differs at ${differing.join(',')}`,
  );
});

test('a private key readable by others is refused with the chmod fix', { skip: !posix }, async () => {
  const dir = await tempDir();
  const path = join(dir, 'id');
  await writeIdentityFiles(path, generateIdentity());
  await chmod(path, 0o644);
  await assert.rejects(loadIdentity(path), (error: unknown) => {
    assert.ok(error instanceof IdentityError);
    assert.equal(error.code, 'ERR_KEY_PERMISSIONS');
    assert.ok(error.message.includes('(mode 0644)'), error.message);
    assert.ok(error.message.endsWith(`run: chmod 600 ${path}`), error.message);
    return true;
  });
  await chmod(path, 0o600);
  await loadIdentity(path);
});

test('a passphrase-protected key is refused with how to remove the passphrase', async () => {
  const dir = await tempDir();
  const path = join(dir, 'locked');
  keygen('-t', 'ed25519', '-N', 'secret', '-f', path, '-q');
  await assert.rejects(loadIdentity(path), (error: unknown) => {
    assert.ok(error instanceof IdentityError);
    assert.equal(error.code, 'ERR_KEY_ENCRYPTED');
    assert.ok(error.message.includes('passphrase'), error.message);
    assert.ok(error.message.includes(`ssh-keygen -p -N '' -f ${path}`), error.message);
    return true;
  });
});

test('a missing key names the path and mtt keygen', async () => {
  const dir = await tempDir();
  const path = join(dir, 'nope');
  await assert.rejects(loadIdentity(path), (error: unknown) => {
    assert.ok(error instanceof IdentityError);
    assert.equal(error.code, 'ERR_KEY_MISSING');
    assert.ok(error.message.includes(`mtt keygen -f ${path}`), error.message);
    return true;
  });
});

test('paths with spaces are shell-quoted in the suggested command', { skip: !posix }, async () => {
  const dir = await tempDir();
  const path = join(dir, 'my key');
  await writeIdentityFiles(path, generateIdentity());
  await chmod(path, 0o640);
  await assert.rejects(loadIdentity(path), { message: new RegExp(`chmod 600 '${dir}/my key'$`) });
});

test('loadOrCreateHostKey creates the key and its 0700 folder once, then loads it', async () => {
  const dir = await tempDir();
  const path = join(dir, 'etc', 'mtt', 'host_key');
  const first = await loadOrCreateHostKey(path);
  assert.equal(first.created, true);
  if (posix) {
    assert.equal((await stat(join(dir, 'etc', 'mtt'))).mode & 0o777, 0o700);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  }
  const second = await loadOrCreateHostKey(path);
  assert.equal(second.created, false);
  assert.deepEqual(second.identity.publicRaw, first.identity.publicRaw);
});

test('loadOrCreateHostKey does not hide a bad existing key', { skip: !posix }, async () => {
  const dir = await tempDir();
  const path = join(dir, 'host_key');
  await writeIdentityFiles(path, generateIdentity());
  await chmod(path, 0o604);
  await assert.rejects(loadOrCreateHostKey(path), { code: 'ERR_KEY_PERMISSIONS' });
});
