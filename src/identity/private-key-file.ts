/**
 * The unencrypted OpenSSH private key format (PROTOCOL.key in OpenSSH), so `ssh-keygen` reads our keys and
 * we read keys made by `ssh-keygen -t ed25519 -N ''`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from './identity.js';
import { ED25519_SEED_LENGTH, identityFromSeed, identitySeed } from './identity.js';
import { IdentityError } from './identity-error.js';
import { ED25519_KEY_TYPE, ED25519_PUBLIC_LENGTH, publicKeyBlob } from './public-key.js';
import { shellQuote } from './shell-quote.js';
import { encodeSshWire, SshReader, SshWireError } from './ssh-wire.js';

const BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const END = '-----END OPENSSH PRIVATE KEY-----';
const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
// Unencrypted keys pad the private section to the cipher "none" block size.
const BLOCK_SIZE = 8;
// ssh-keygen wraps the base64 body at 70 columns.
const LINE_WIDTH = 70;

/** Serialize an identity as an unencrypted OpenSSH private key file (PEM-style text, trailing newline). */
export function formatPrivateKeyFile(identity: Identity): string {
  const check = randomBytes(4).readUInt32BE();
  const seed = identitySeed(identity);
  const privateSection = encodeSshWire([
    check,
    check,
    ED25519_KEY_TYPE,
    identity.publicRaw,
    // OpenSSH stores the Ed25519 secret as seed || public key.
    Buffer.concat([seed, identity.publicRaw]),
    identity.comment,
  ]);
  const padLength = (BLOCK_SIZE - (privateSection.length % BLOCK_SIZE)) % BLOCK_SIZE;
  const padding = Buffer.from(Array.from({ length: padLength }, (_, i) => i + 1));
  const body = Buffer.concat([
    MAGIC,
    encodeSshWire(['none', 'none', '', 1, publicKeyBlob(identity.publicRaw)]),
    encodeSshWire([Buffer.concat([privateSection, padding])]),
  ]).toString('base64');
  const lines = body.match(new RegExp(`.{1,${LINE_WIDTH}}`, 'g')) ?? [];
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/** Parse an OpenSSH private key file; `source` (the path) appears in every error with the fix. */
export function parsePrivateKeyFile(text: string, source: string): Identity {
  const path = shellQuote(source);
  const fresh = `restore it from a backup, or create a new key with: mtt keygen --force -f ${path}`;
  const damaged = (what: string) =>
    new IdentityError('ERR_KEY_FORMAT', `private key ${source} is damaged (${what}); ${fresh}`);

  const trimmed = text.replace(/^\uFEFF/, '').trim();
  const begin = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(trimmed);
  if (begin === null) {
    throw new IdentityError(
      'ERR_KEY_FORMAT',
      `${source} is not a private key file (no "-----BEGIN" line); give the private key, not the .pub file, ` +
        `or create one with: mtt keygen -f ${path}`,
    );
  }
  if (begin[0] !== BEGIN) {
    throw new IdentityError(
      'ERR_KEY_FORMAT',
      `${source} is a ${begin[1]}, but mtt reads OpenSSH ed25519 keys only; create one with: mtt keygen -f ${path} ` +
        `(or ssh-keygen -t ed25519 -N '' -f ${path})`,
    );
  }
  if (!trimmed.endsWith(END)) throw damaged('the END line is missing');
  const base64 = trimmed.slice(BEGIN.length, -END.length).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) throw damaged('the body is not base64');
  const data = Buffer.from(base64, 'base64');

  try {
    if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw damaged('the openssh-key-v1 header is missing');
    }
    const reader = new SshReader(data.subarray(MAGIC.length));
    const cipher = reader.string();
    const kdf = reader.string();
    reader.bytes(); // kdf options
    if (cipher !== 'none' || kdf !== 'none') {
      throw new IdentityError(
        'ERR_KEY_ENCRYPTED',
        `private key ${source} is protected by a passphrase, which mtt cannot use; remove it with: ` +
          `ssh-keygen -p -N '' -f ${path} (or use a key without a passphrase)`,
      );
    }
    const count = reader.uint32();
    if (count !== 1) throw damaged(`it holds ${count} keys, mtt expects exactly 1`);
    const outerBlob = reader.bytes();
    const privateSection = reader.bytes();
    if (reader.remaining !== 0) throw damaged('unexpected data after the keys');

    const inner = new SshReader(privateSection);
    const check1 = inner.uint32();
    const check2 = inner.uint32();
    // Equal check numbers are how OpenSSH detects a wrong passphrase; here they catch corruption.
    if (check1 !== check2) throw damaged('check numbers differ');
    const type = inner.string();
    if (type !== ED25519_KEY_TYPE) {
      throw new IdentityError(
        'ERR_KEY_FORMAT',
        `${source} is a ${type.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)} key, but mtt uses ${ED25519_KEY_TYPE} keys only; create one with: ` +
          `mtt keygen -f ${path} (or ssh-keygen -t ed25519 -N '' -f ${path})`,
      );
    }
    const publicRaw = inner.bytes();
    const secret = inner.bytes();
    const comment = inner.string();
    const padding = inner.rest();
    if (
      publicRaw.length !== ED25519_PUBLIC_LENGTH ||
      secret.length !== ED25519_SEED_LENGTH + ED25519_PUBLIC_LENGTH
    ) {
      throw damaged('wrong key length');
    }
    if (padding.length >= BLOCK_SIZE || !padding.every((byte, i) => byte === i + 1)) {
      throw damaged('bad padding');
    }
    if (/[\x00-\x1f\x7f]/.test(comment)) throw damaged('the comment contains control characters');

    const identity = identityFromSeed(secret.subarray(0, ED25519_SEED_LENGTH), comment);
    // The stored public halves must be the ones the seed produces, or the file was tampered with.
    const expected = identity.publicRaw;
    if (
      !timingSafeEqual(expected, publicRaw) ||
      !timingSafeEqual(expected, secret.subarray(ED25519_SEED_LENGTH)) ||
      !outerBlob.equals(publicKeyBlob(expected))
    ) {
      throw damaged('the public key does not match the private key');
    }
    return identity;
  } catch (error) {
    if (error instanceof SshWireError) throw damaged('truncated');
    throw error;
  }
}
