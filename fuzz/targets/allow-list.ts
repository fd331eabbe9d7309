/**
 * The allow-list parser (authorized_keys style) and the port-list parser behind permitlisten.
 * Lines are built from real keys (formatPublicKeyLine, encodeSshWire), then changed where the parser
 * looks: options and their quoting, port lists, key types, base64, the SSH wire blob's own length
 * fields, comments with control characters, line endings. Properties: only IdentityErrors with a
 * code; what parses is sane (32-byte keys, SHA256 fingerprints, ranges within 1-65535 that survive
 * formatPortRanges and parse again, one entry per key, line numbers in order).
 */
import { type AllowListEntry, parseAllowList } from '../../src/identity/allow-list.js';
import { formatPortRanges, parsePortRanges } from '../../src/identity/port-range.js';
import { ED25519_KEY_TYPE, formatPublicKeyLine } from '../../src/identity/public-key.js';
import { encodeSshWire } from '../../src/identity/ssh-wire.js';
import { havoc } from '../lib/mutate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import { identityOf } from '../lib/peer.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';

const NASTY_CHARS = [
  '\0',
  '\t',
  '\r',
  '\v',
  '\f',
  '\x1b',
  '\x7f',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u202e',
  '\ufeff',
  '"',
  '\\',
  ',',
  '=',
  '#',
  ' ',
  'é',
  '😀',
  '\ud800',
];

function portToken(rng: Rng): string {
  const r = rng.int(12);
  const port = () =>
    String(rng.pick([0, 1, 22, 80, 1023, 1024, 8080, 65534, 65535, 65536, 99999, rng.int(70000)]));
  if (r < 4) return port();
  if (r < 7) return `${port()}${rng.pick(['-', ' - ', '-', '--', ' -'])}${port()}`;
  if (r === 7) return '*';
  if (r === 8)
    return rng.pick(['', ' ', '-', '5-', '-5', 'a', '0x50', '1e3', '+80', '８０', '00080', '123456', '١٢']);
  if (r === 9) return `${port()}${rng.pick(NASTY_CHARS)}`;
  return ` ${port()} `;
}

/** A port list such as "2222,10000-10100", often broken. */
export function portList(rng: Rng): string {
  const n = 1 + rng.smallLen(6);
  return Array.from({ length: n }, () => portToken(rng)).join(
    rng.chance(0.9) ? ',' : rng.pick([', ', ',,', ';', ' ']),
  );
}

function options(rng: Rng): string {
  const n = 1 + rng.smallLen(3);
  const list: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = rng.weighted([
      [8, 'permitlisten'],
      [1, 'PermitListen'],
      [1, 'permitopen'],
      [1, 'no-pty'],
      [1, 'command'],
      [1, rng.pick(['', '-', 'a b', 'permitlisten ', '"permitlisten"'])],
    ] as const);
    let value = portList(rng);
    if (rng.chance(0.1)) value = value.replace(',', '\\",');
    const r = rng.int(10);
    list.push(
      r < 7 ? `${name}="${value}"` : r === 7 ? name : r === 8 ? `${name}=${value}` : `${name}="${value}`,
    );
  }
  return list.join(rng.chance(0.9) ? ',' : ', ');
}

/** The base64 key field: valid, or its blob changed field by field, or its text changed. */
function keyData(rng: Rng, raw: Buffer): string {
  const r = rng.int(10);
  if (r < 5) return formatPublicKeyLine(raw).split(' ')[1]!;
  if (r < 8) {
    // The blob is `string type | string key`; change the type, the key length, or the u32 lengths.
    const type = rng.chance(0.7)
      ? ED25519_KEY_TYPE
      : rng.pick(['ssh-rsa', 'ssh-ed25519\0', '', 'x'.repeat(300)]);
    const key = rng.chance(0.7) ? raw : rng.bytes(rng.pick([0, 31, 33, 64]));
    let blob = encodeSshWire(rng.chance(0.8) ? [type, key] : [type, key, rng.bytes(rng.int(8))]);
    if (rng.chance(0.4)) {
      const at = rng.pick([0, 4 + Buffer.byteLength(type)]);
      if (at + 4 <= blob.length)
        blob.writeUInt32BE(rng.pick([0, 1, 31, 32, 33, 0x7fffffff, 0xffffffff, rng.u32()]), at);
    }
    if (rng.chance(0.2)) blob = havoc(blob, rng, 2);
    return blob.toString('base64');
  }
  const text = formatPublicKeyLine(raw).split(' ')[1]!;
  const cut = rng.int(text.length);
  return rng.pick([
    text.slice(0, cut),
    `${text}=`,
    `${text.slice(0, cut)}${rng.pick(NASTY_CHARS)}${text.slice(cut)}`,
    text.replace(/=+$/, ''),
    text.replace(/A/g, '-'),
  ]);
}

function comment(rng: Rng): string {
  const n = rng.smallLen(40);
  let s = '';
  for (let i = 0; i < n; i++)
    s += rng.chance(0.7) ? String.fromCharCode(0x21 + rng.int(94)) : rng.pick(NASTY_CHARS);
  return s;
}

function keyLine(rng: Rng): string {
  const raw = identityOf(Buffer.alloc(32, 1 + rng.int(8))).publicRaw;
  const type = rng.chance(0.9)
    ? ED25519_KEY_TYPE
    : rng.pick([
        'ssh-rsa',
        'ecdsa-sha2-nistp256',
        'sk-ssh-ed25519@openssh.com',
        'ssh-ed25519x',
        'SSH-ED25519',
        '',
      ]);
  const sep = () => (rng.chance(0.85) ? ' ' : rng.pick(['\t', '  ', ' \t ', '\u00a0']));
  let line = `${type}${sep()}${keyData(rng, raw)}`;
  if (rng.chance(0.6)) line += `${sep()}${comment(rng)}`;
  if (rng.chance(0.4)) line = `${options(rng)}${sep()}${line}`;
  if (rng.chance(0.05)) line = keyData(rng, raw); // key data without a type
  return line;
}

function allowListText(rng: Rng): string {
  const n = 1 + rng.smallLen(6);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    lines.push(
      r < 7
        ? keyLine(rng)
        : r === 7
          ? `# ${comment(rng)}`
          : r === 8
            ? ''
            : rng.pick(['   ', '\t', '#', ' # x']),
    );
  }
  if (rng.chance(0.1) && lines.length > 0) lines.push(lines[0]!); // a repeated key
  let text = lines.join(rng.chance(0.85) ? '\n' : rng.pick(['\r\n', '\r', '\n\n']));
  if (rng.chance(0.05)) text = `\ufeff${text}`;
  if (rng.chance(0.15)) {
    // A few characters changed anywhere.
    const chars = [...text];
    const k = 1 + rng.int(3);
    for (let i = 0; i < k; i++) {
      const at = rng.int(chars.length + 1);
      const op = rng.int(3);
      if (op === 0) chars.splice(at, 0, rng.pick(NASTY_CHARS));
      else if (op === 1) chars.splice(at, 1);
      else chars.splice(at, 0, ...chars.slice(at, at + 1 + rng.int(20)));
    }
    text = chars.join('');
  }
  return text;
}

function checkEntries(entries: AllowListEntry[], text: string): void {
  const lineCount = text.split('\n').length;
  let lastLine = 0;
  const keys = new Set<string>();
  for (const e of entries) {
    if (e.publicRaw.length !== 32)
      throw new OracleError(`entry on line ${e.line} has a ${e.publicRaw.length}-byte key`);
    if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(e.fingerprint))
      throw new OracleError(`bad fingerprint ${e.fingerprint}`);
    if (e.line <= lastLine || e.line > lineCount)
      throw new OracleError(`line number ${e.line} out of order or range`);
    lastLine = e.line;
    const k = e.publicRaw.toString('hex');
    if (keys.has(k)) throw new OracleError(`key listed twice was accepted (line ${e.line})`);
    keys.add(k);
    if (/[\n\r]/.test(e.comment)) throw new OracleError(`comment on line ${e.line} holds a line break`);
    checkRanges(e.options.permitListen);
  }
}

function checkRanges(ranges: ReadonlyArray<{ low: number; high: number }>): void {
  if (ranges.length === 0) throw new OracleError('an empty port list was accepted');
  for (const r of ranges) {
    if (
      !Number.isInteger(r.low) ||
      !Number.isInteger(r.high) ||
      r.low < 1 ||
      r.high > 65535 ||
      r.low > r.high
    ) {
      throw new OracleError(`port range ${r.low}-${r.high} is not within 1-65535`);
    }
  }
  const again = parsePortRanges(formatPortRanges(ranges));
  if (formatPortRanges(again) !== formatPortRanges(ranges))
    throw new OracleError('port ranges do not survive formatting');
}

interface AllowListInput {
  kind: 'file' | 'ports';
  text: string;
}

/** The allow-list and port-list parsers. */
export const allowList: Target<AllowListInput> = {
  name: 'allow-list',
  about:
    'parseAllowList on lines built from real keys and changed (options, quoting, port lists, base64, SSH blob lengths, comments, line endings) and parsePortRanges; coded errors, sane entries',
  weight: 100_000,
  hangMs: 2000,
  generate: (rng) =>
    rng.chance(0.2) ? { kind: 'ports', text: portList(rng) } : { kind: 'file', text: allowListText(rng) },
  execute: (input) => {
    if (input.kind === 'ports') {
      let ranges: ReturnType<typeof parsePortRanges>;
      try {
        ranges = parsePortRanges(input.text);
      } catch (err) {
        expectCoded(err);
        return;
      }
      checkRanges(ranges);
      return;
    }
    let entries: AllowListEntry[];
    try {
      entries = parseAllowList(input.text, 'fuzz');
    } catch (err) {
      expectCoded(err);
      return;
    }
    checkEntries(entries, input.text);
  },
};
