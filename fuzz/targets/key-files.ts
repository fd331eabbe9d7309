/**
 * The key file parsers a user hands mtt: OpenSSH private key files (parsePrivateKeyFile) and public
 * key lines (parsePublicKeyLine). Files come from the real writer (formatPrivateKeyFile), then their
 * binary body is changed where the parser trusts it: the u32 length of each SSH string, the key
 * count, check numbers, padding, the key type, lengths of the key halves; or their text is changed
 * (armour lines, base64, line breaks). Properties: only IdentityErrors with a code; an unchanged
 * file gives back the same key.
 */

import { identityFromSeed } from '../../src/identity/identity.js';
import { formatPrivateKeyFile, parsePrivateKeyFile } from '../../src/identity/private-key-file.js';
import { formatPublicKeyLine, parsePublicKeyLine } from '../../src/identity/public-key.js';
import { havoc } from '../lib/mutate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import { identityOf } from '../lib/peer.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';

const MAGIC_LEN = 'openssh-key-v1\0'.length;

/** Offsets of the u32 fields that look like SSH string lengths (a walk that follows them). */
function lengthFields(body: Buffer, from: number): number[] {
  const out: number[] = [];
  let i = from;
  while (i + 4 <= body.length) {
    out.push(i);
    const n = body.readUInt32BE(i);
    // A value that fits is a string length (or a count/check number: both are worth changing).
    i += n <= body.length - i - 4 ? 4 + (n > 64 ? 0 : n) : 4;
  }
  return out;
}

interface KeyFileInput {
  kind: 'private' | 'public';
  text: string;
  /** The seed it was written from, when the text is unchanged. */
  unchanged: Buffer | undefined;
}

const files = new Map<string, string>();
/** formatPrivateKeyFile's output, one per key and comment (its check numbers are random, so a case
 * regenerated in another process differs there; a saved finding holds the exact text). */
function written(seed: Buffer, comment: string): string {
  const k = `${seed[0]}|${comment}`;
  let text = files.get(k);
  if (text === undefined) {
    text = formatPrivateKeyFile(identityFromSeed(seed, comment));
    files.set(k, text);
  }
  return text;
}

function privateFile(rng: Rng): KeyFileInput {
  const seed = Buffer.alloc(32, 1 + rng.int(4));
  const comment = rng.pick(['', 'user@host', 'x'.repeat(200)]);
  const text = written(seed, comment);
  const r = rng.int(10);
  if (r === 0) return { kind: 'private', text, unchanged: seed };
  const lines = text.trim().split('\n');
  if (r < 7) {
    let body: Buffer = Buffer.from(lines.slice(1, -1).join(''), 'base64');
    const fields = lengthFields(body, MAGIC_LEN);
    for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
      const at = rng.chance(0.8) && fields.length > 0 ? rng.pick(fields) : rng.int(body.length);
      body = Buffer.from(body);
      if (at + 4 <= body.length) {
        const now = body.readUInt32BE(at);
        body.writeUInt32BE(
          rng.pick([0, 1, (now - 1) >>> 0, now + 1, 0x7fffffff, 0xffffffff, body.length, rng.u32()]) >>> 0,
          at,
        );
      }
    }
    if (rng.chance(0.3)) body = havoc(body, rng, 2);
    const b64 = body.toString('base64').match(/.{1,70}/g) ?? [];
    return {
      kind: 'private',
      text: [lines[0], ...b64, lines[lines.length - 1]].join('\n'),
      unchanged: undefined,
    };
  }
  const chars = [...text];
  for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
    const at = rng.int(chars.length);
    const op = rng.int(3);
    if (op === 0) chars.splice(at, 1);
    else if (op === 1)
      chars.splice(
        at,
        0,
        rng.pick(['-', '=', '\r\n', ' ', 'A', '\0', '\ufeff', '-----END OPENSSH PRIVATE KEY-----']),
      );
    else chars.length = at;
  }
  return { kind: 'private', text: chars.join(''), unchanged: undefined };
}

function publicLine(rng: Rng): KeyFileInput {
  const seed = Buffer.alloc(32, 1 + rng.int(4));
  const line = formatPublicKeyLine(identityOf(seed).publicRaw, rng.pick(['', 'me@box', 'a b c']));
  if (rng.chance(0.2)) return { kind: 'public', text: line, unchanged: seed };
  const chars = [...line];
  for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
    const at = rng.int(chars.length + 1);
    const op = rng.int(3);
    if (op === 0) chars.splice(at, 1);
    else if (op === 1) chars.splice(at, 0, rng.pick([' ', '\t', '=', '\n', '\u001b', 'A', '/', '+', 'é']));
    else chars.splice(at, 0, ...chars.slice(at, at + 1 + rng.int(8)));
  }
  return { kind: 'public', text: chars.join(''), unchanged: undefined };
}

function execute(input: KeyFileInput): void {
  const expected = input.unchanged ? identityOf(input.unchanged).publicRaw : undefined;
  let got: Buffer;
  try {
    got =
      input.kind === 'private'
        ? parsePrivateKeyFile(input.text, '/fuzz/id_ed25519').publicRaw
        : parsePublicKeyLine(input.text).publicRaw;
  } catch (err) {
    expectCoded(err);
    if (expected)
      throw new OracleError(`an unchanged ${input.kind} key was refused: ${(err as Error).message}`);
    return;
  }
  if (got.length !== 32) throw new OracleError(`a ${input.kind} key parsed to ${got.length} bytes`);
  if (expected && !got.equals(expected))
    throw new OracleError(`an unchanged ${input.kind} key parsed to another key`);
}

/** Private key files and public key lines. */
export const keyFiles: Target<KeyFileInput> = {
  name: 'key-files',
  about:
    'parsePrivateKeyFile and parsePublicKeyLine on files from formatPrivateKeyFile / formatPublicKeyLine changed in their SSH string lengths, counts, check numbers, padding, armour and base64; coded errors, unchanged keys read back',
  weight: 40_000,
  hangMs: 2000,
  generate: (rng) => (rng.chance(0.7) ? privateFile(rng) : publicLine(rng)),
  execute,
};
