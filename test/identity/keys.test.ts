import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { test } from 'node:test';
import {
  fingerprint,
  formatPrivateKeyFile,
  formatPublicKeyLine,
  generateIdentity,
  IdentityError,
  identityFromSeed,
  parsePrivateKeyFile,
  parsePublicKeyLine,
  publicKeyBlob,
  publicKeyFromRaw,
} from '../../src/identity/index.js';

// RFC 8032 section 7.1, TEST 1.
const RFC_SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const RFC_PUBLIC = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
const RFC_SIGNATURE =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

test('identityFromSeed reproduces the RFC 8032 test vector', () => {
  const identity = identityFromSeed(RFC_SEED, 'vector');
  assert.deepEqual(identity.publicRaw, RFC_PUBLIC);
  assert.equal(identity.comment, 'vector');
  assert.equal(sign(null, Buffer.alloc(0), identity.privateKey).toString('hex'), RFC_SIGNATURE);
});

test('identityFromSeed rejects a seed of the wrong length', () => {
  assert.throws(() => identityFromSeed(Buffer.alloc(31)), /32 bytes/);
});

test('generateIdentity makes distinct working key pairs', () => {
  const a = generateIdentity('a');
  const b = generateIdentity('b');
  assert.equal(a.publicRaw.length, 32);
  assert.notDeepEqual(a.publicRaw, b.publicRaw);
  const signature = sign(null, Buffer.from('hello'), a.privateKey);
  assert.ok(verify(null, Buffer.from('hello'), a.publicKey, signature));
  assert.ok(verify(null, Buffer.from('hello'), publicKeyFromRaw(a.publicRaw), signature));
  assert.ok(!verify(null, Buffer.from('hello'), b.publicKey, signature));
});

test('generateIdentity refuses a comment with a line break', () => {
  assert.throws(() => generateIdentity('a\nssh-ed25519 AAAA evil'), { code: 'ERR_KEY_FORMAT' });
});

test('the public blob is string "ssh-ed25519" then string pub32', () => {
  const blob = publicKeyBlob(RFC_PUBLIC);
  assert.equal(
    blob.toString('hex'),
    `0000000b${Buffer.from('ssh-ed25519').toString('hex')}00000020${RFC_PUBLIC.toString('hex')}`,
  );
});

test('formatPublicKeyLine and parsePublicKeyLine round-trip, with and without a comment', () => {
  const line = formatPublicKeyLine(RFC_PUBLIC, 'alice@laptop');
  assert.match(line, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+=* alice@laptop$/);
  assert.deepEqual(parsePublicKeyLine(`${line}\n`), { publicRaw: RFC_PUBLIC, comment: 'alice@laptop' });
  const bare = formatPublicKeyLine(RFC_PUBLIC);
  assert.equal(bare.split(' ').length, 2);
  assert.deepEqual(parsePublicKeyLine(bare), { publicRaw: RFC_PUBLIC, comment: '' });
  assert.equal(parsePublicKeyLine(`${bare} two words`).comment, 'two words');
});

test('parsePublicKeyLine names the supported type when given another', () => {
  assert.throws(
    () => parsePublicKeyLine('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== me'),
    (error: unknown) =>
      error instanceof IdentityError &&
      error.code === 'ERR_KEY_FORMAT' &&
      error.message.includes('"ssh-rsa" is not supported') &&
      error.message.includes('ssh-ed25519'),
  );
});

test('parsePublicKeyLine rejects blobs whose inner type or length is wrong', () => {
  const innerRsa = Buffer.concat([
    Buffer.from('00000007', 'hex'),
    Buffer.from('ssh-rsa'),
    Buffer.from('00000020', 'hex'),
    RFC_PUBLIC,
  ]).toString('base64');
  assert.throws(() => parsePublicKeyLine(`ssh-ed25519 ${innerRsa}`), /holds a "ssh-rsa" key/);
  const short = publicKeyBlob(RFC_PUBLIC).subarray(0, 40).toString('base64');
  assert.throws(() => parsePublicKeyLine(`ssh-ed25519 ${short}`), /truncated/);
  const long = Buffer.concat([publicKeyBlob(RFC_PUBLIC), Buffer.from([0])]).toString('base64');
  assert.throws(() => parsePublicKeyLine(`ssh-ed25519 ${long}`), /wrong length/);
  assert.throws(() => parsePublicKeyLine('ssh-ed25519 AAAA!!!!'), /not valid base64/);
  assert.throws(() => parsePublicKeyLine('ssh-ed25519'), /missing/);
  assert.throws(() => parsePublicKeyLine(''), /empty/);
});

test('fingerprint is SHA256: plus unpadded base64', () => {
  const value = fingerprint(RFC_PUBLIC);
  assert.match(value, /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.notEqual(value, fingerprint(generateIdentity().publicRaw));
});

test('private key file round-trips and has the OpenSSH layout', () => {
  const identity = identityFromSeed(RFC_SEED, 'host key');
  const text = formatPrivateKeyFile(identity);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], '-----BEGIN OPENSSH PRIVATE KEY-----');
  assert.equal(lines.at(-1), '-----END OPENSSH PRIVATE KEY-----');
  for (const line of lines.slice(1, -2)) assert.equal(line.length, 70);
  const body = Buffer.from(lines.slice(1, -1).join(''), 'base64');
  assert.ok(body.subarray(0, 15).equals(Buffer.from('openssh-key-v1\0', 'latin1')));
  const parsed = parsePrivateKeyFile(text, '/keys/id');
  assert.deepEqual(parsed.publicRaw, RFC_PUBLIC);
  assert.equal(parsed.comment, 'host key');
});

test('parsePrivateKeyFile refuses other formats, damage and tampering with a fix', () => {
  const text = formatPrivateKeyFile(identityFromSeed(RFC_SEED, 'c'));
  assert.throws(
    () => parsePrivateKeyFile(formatPublicKeyLine(RFC_PUBLIC), '/k'),
    /not a private key file.*mtt keygen -f \/k/,
  );
  assert.throws(
    () => parsePrivateKeyFile('-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n', '/k'),
    /RSA PRIVATE KEY.*ed25519/,
  );
  assert.throws(() => parsePrivateKeyFile(text.replace('-----END OPENSSH PRIVATE KEY-----', ''), '/k'), {
    code: 'ERR_KEY_FORMAT',
  });
  // Swap the public key stored in the file for another one: the seed no longer matches it.
  const body = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
  const other = generateIdentity().publicRaw;
  const pos = body.indexOf(RFC_PUBLIC);
  other.copy(body, pos);
  const tampered = `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
  assert.throws(() => parsePrivateKeyFile(tampered, '/k'), /does not match/);
});
