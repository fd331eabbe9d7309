/**
 * An Ed25519 identity: the key pair plus the raw public bytes the protocol and the OpenSSH formats use.
 */

import type { KeyObject } from 'node:crypto';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { assertComment, ED25519_PUBLIC_LENGTH } from './public-key.js';

/** Length in bytes of an Ed25519 private seed. */
export const ED25519_SEED_LENGTH = 32;

/** An Ed25519 key pair. KeyObjects never print their secret, so logging an Identity leaks nothing. */
export interface Identity {
  /** The private key; sign with `crypto.sign(null, data, privateKey)`. */
  readonly privateKey: KeyObject;
  /** The public key; verify with `crypto.verify(null, data, publicKey, signature)`. */
  readonly publicKey: KeyObject;
  /** The raw 32-byte public key, as sent on the wire and stored in OpenSSH blobs. */
  readonly publicRaw: Buffer;
  /** Free text that follows the key in .pub files and allow-lists (often user@host). */
  readonly comment: string;
}

// PKCS#8 DER header of an Ed25519 private key (RFC 8410); the 32-byte seed follows. Node 20's JWK
// import needs `x`, which we do not have yet, so the seed goes in through DER instead.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Create a fresh random identity; the comment defaults to user@host, as ssh-keygen does. */
export function generateIdentity(comment: string = defaultComment()): Identity {
  assertComment(comment);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicRaw: rawPublic(publicKey), comment };
}

/** Rebuild an identity from its 32-byte seed (test vectors, and loading OpenSSH key files). */
export function identityFromSeed(seed: Uint8Array, comment = ''): Identity {
  if (seed.length !== ED25519_SEED_LENGTH) {
    throw new TypeError(`an Ed25519 seed is ${ED25519_SEED_LENGTH} bytes, got ${seed.length}`);
  }
  assertComment(comment);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicRaw: rawPublic(publicKey), comment };
}

/** A verify-only KeyObject from a raw 32-byte Ed25519 public key (e.g. a peer's key from its hello). */
export function publicKeyFromRaw(publicRaw: Uint8Array): KeyObject {
  if (publicRaw.length !== ED25519_PUBLIC_LENGTH) {
    throw new TypeError(`an Ed25519 public key is ${ED25519_PUBLIC_LENGTH} bytes, got ${publicRaw.length}`);
  }
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicRaw).toString('base64url') },
    format: 'jwk',
  });
}

/** The 32-byte private seed; only the key-file writer needs it. Not re-exported from index.ts. */
export function identitySeed(identity: Identity): Buffer {
  const { d } = identity.privateKey.export({ format: 'jwk' });
  if (d === undefined) throw new TypeError('identity.privateKey is not a private key');
  return Buffer.from(d, 'base64url');
}

function rawPublic(publicKey: KeyObject): Buffer {
  const { x } = publicKey.export({ format: 'jwk' });
  if (x === undefined) throw new TypeError('not an Ed25519 public key');
  return Buffer.from(x, 'base64url');
}

function defaultComment(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    // userInfo() throws when the uid has no passwd entry (common in containers).
    return '';
  }
}
