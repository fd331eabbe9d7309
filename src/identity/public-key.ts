/**
 * OpenSSH public key text: `ssh-ed25519 AAAA… comment` lines and `SHA256:…` fingerprints.
 */
import { createHash } from 'node:crypto';
import { IdentityError } from './identity-error.js';
import { encodeSshWire, SshReader, SshWireError } from './ssh-wire.js';

/** The only key type mtt uses, as OpenSSH names it. */
export const ED25519_KEY_TYPE = 'ssh-ed25519';

/** Length in bytes of a raw Ed25519 public key. */
export const ED25519_PUBLIC_LENGTH = 32;

/** A public key line taken apart. */
export interface ParsedPublicKey {
  /** The raw 32-byte Ed25519 public key. */
  publicRaw: Buffer;
  /** Free text after the key data ('' when absent). */
  comment: string;
}

/** Outcome of checking a key type token and its base64 data, before the caller adds file and line context. */
export type KeyFieldsResult = { ok: true; publicRaw: Buffer } | { ok: false; problem: string; fix: string };

const FIX_COPY = 'copy the whole line from the .pub file again';
const FIX_TYPE = 'use an ssh-ed25519 key (make one with mtt keygen, or ssh-keygen -t ed25519)';

/** The OpenSSH wire blob of a public key: string "ssh-ed25519", string pub32. */
export function publicKeyBlob(publicRaw: Uint8Array): Buffer {
  assertPublicRaw(publicRaw);
  return encodeSshWire([ED25519_KEY_TYPE, publicRaw]);
}

/** The fingerprint exactly as `ssh-keygen -l` prints it: "SHA256:" + unpadded base64 of sha256(blob). */
export function fingerprint(publicRaw: Uint8Array): string {
  const digest = createHash('sha256').update(publicKeyBlob(publicRaw)).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

/** Format `ssh-ed25519 BASE64 comment` (no comment part when the comment is empty). */
export function formatPublicKeyLine(publicRaw: Uint8Array, comment = ''): string {
  assertComment(comment);
  const base = `${ED25519_KEY_TYPE} ${publicKeyBlob(publicRaw).toString('base64')}`;
  return comment === '' ? base : `${base} ${comment}`;
}

/** Parse `ssh-ed25519 BASE64 [comment]`; throws IdentityError ERR_KEY_FORMAT naming the problem and the fix. */
export function parsePublicKeyLine(line: string): ParsedPublicKey {
  const text = line.replace(/^\uFEFF/, '').trim();
  if (text === '') {
    throw new IdentityError('ERR_KEY_FORMAT', `the public key is empty; ${FIX_COPY}`);
  }
  if (/[\r\n]/.test(text)) {
    throw new IdentityError(
      'ERR_KEY_FORMAT',
      `the public key spans several lines; give exactly one key line`,
    );
  }
  const match = /^(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(.*))?$/.exec(text);
  const type = match?.[1] ?? '';
  const result = checkKeyFields(type, match?.[2]);
  if (!result.ok) throw new IdentityError('ERR_KEY_FORMAT', `${result.problem}; ${result.fix}`);
  return { publicRaw: result.publicRaw, comment: (match?.[3] ?? '').trim() };
}

/** Check a key type token and its base64 blob; shared by every parser so all report the same problems. */
export function checkKeyFields(type: string, base64: string | undefined): KeyFieldsResult {
  if (type !== ED25519_KEY_TYPE) {
    if (type.startsWith('AAAA')) {
      return { ok: false, problem: 'the key type is missing before the key data', fix: FIX_COPY };
    }
    return { ok: false, problem: `key type "${type}" is not supported`, fix: FIX_TYPE };
  }
  if (base64 === undefined) {
    return { ok: false, problem: `the key data is missing after "${ED25519_KEY_TYPE}"`, fix: FIX_COPY };
  }
  // Buffer.from(…, 'base64') skips junk silently, so check the alphabet and the round trip explicitly.
  const blob = Buffer.from(base64, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || blob.toString('base64') !== base64) {
    return { ok: false, problem: 'the key data is not valid base64', fix: FIX_COPY };
  }
  try {
    const reader = new SshReader(blob);
    const innerType = reader.string();
    if (innerType !== ED25519_KEY_TYPE) {
      return {
        ok: false,
        problem: `the key data holds a "${printable(innerType)}" key, not ${ED25519_KEY_TYPE}`,
        fix: FIX_TYPE,
      };
    }
    const publicRaw = reader.bytes();
    if (publicRaw.length !== ED25519_PUBLIC_LENGTH || reader.remaining !== 0) {
      return {
        ok: false,
        problem: 'the key data has the wrong length for an ssh-ed25519 key',
        fix: FIX_COPY,
      };
    }
    return { ok: true, publicRaw: Buffer.from(publicRaw) };
  } catch (error) {
    if (!(error instanceof SshWireError)) throw error;
    return { ok: false, problem: 'the key data is truncated', fix: FIX_COPY };
  }
}

/** Reject comments that would break the one-key-per-line files they end up in. */
export function assertComment(comment: string): void {
  if (/[\x00-\x1f\x7f]/.test(comment)) {
    throw new IdentityError(
      'ERR_KEY_FORMAT',
      'the key comment contains a line break or control character; use a single line of plain text',
    );
  }
}

function assertPublicRaw(publicRaw: Uint8Array): void {
  if (publicRaw.length !== ED25519_PUBLIC_LENGTH) {
    throw new TypeError(`an Ed25519 public key is ${ED25519_PUBLIC_LENGTH} bytes, got ${publicRaw.length}`);
  }
}

/** Keep attacker-supplied text out of the terminal's control sequences and make it short. */
function printable(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}
