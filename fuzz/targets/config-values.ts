/**
 * The small parsers behind config fields (and the dashboard): IPv4, IPv6 (zones, embedded IPv4),
 * CIDR blocks, host names, "host:port", transfer rates. Inputs are built from the grammar's pieces
 * (octets out of range, leading zeros, extra groups, "::" twice, zone ids, prefixes, units) and then
 * changed character by character. Properties: only ConfigErrors; an address mtt accepts, Node's own
 * parser accepts too, and it formats and parses back to the same bytes; a CIDR block survives
 * formatting; host:port survives formatting; a rate is a whole number within what the wire carries.
 */
import { isIPv4, isIPv6 } from 'node:net';
import {
  formatAddress,
  formatHostPort,
  hostProblem,
  parseCidr,
  parseIPv4,
  parseIPv6,
  splitHostPort,
} from '../../src/config/host-port.js';
import { MAX_RATE_BYTES_PER_SECOND, parseRate, rateProblem } from '../../src/config/rate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';

const ODD = [
  '',
  ' ',
  '\t',
  '\0',
  '\u001b',
  '\u202e',
  '١',
  '０',
  '-',
  '+',
  '.',
  ':',
  '::',
  '%',
  '/',
  '[',
  ']',
  'x',
  'é',
  '\n',
];

function octet(rng: Rng): string {
  return rng.pick([
    '0',
    '1',
    '9',
    '10',
    '99',
    '127',
    '255',
    '256',
    '300',
    '999',
    '00',
    '01',
    '007',
    '1000',
    String(rng.int(260)),
  ]);
}
function word(rng: Rng): string {
  return rng.pick([
    '0',
    '1',
    'ffff',
    'FFFF',
    'db8',
    '2001',
    'fe80',
    '0000',
    '00000',
    'g',
    '12345',
    rng.int(0x10000).toString(16),
  ]);
}

function ipv4(rng: Rng): string {
  const n = rng.chance(0.85) ? 4 : rng.pick([1, 2, 3, 5]);
  return Array.from({ length: n }, () => octet(rng)).join('.');
}

function ipv6(rng: Rng): string {
  const n = rng.chance(0.8) ? rng.int(9) : rng.range(9, 12);
  const words = Array.from({ length: n }, () => word(rng));
  if (rng.chance(0.6)) words.splice(rng.int(words.length + 1), 0, '');
  if (rng.chance(0.05)) words.splice(rng.int(words.length + 1), 0, '');
  let s = words.join(':');
  if (s.startsWith(':') && !s.startsWith('::')) s = `:${s}`;
  if (s.endsWith(':') && !s.endsWith('::')) s = `${s}:`;
  if (s === '') s = '::';
  if (rng.chance(0.15)) s = `${s}${s.endsWith(':') ? '' : ':'}${ipv4(rng)}`;
  if (rng.chance(0.1)) s = `${s}%${rng.pick(['eth0', 'lo', '1', '', 'a/b', 'x'.repeat(40)])}`;
  return s;
}

function address(rng: Rng): string {
  return rng.chance(0.4) ? ipv4(rng) : ipv6(rng);
}

function hostName(rng: Rng): string {
  const n = 1 + rng.int(4);
  return Array.from({ length: n }, () =>
    rng.pick([
      'db',
      'lan',
      'a',
      '-a',
      'a-',
      '_x',
      'x'.repeat(63),
      'x'.repeat(64),
      '1',
      '123',
      'xn--bcher-kva',
      'ex ample',
    ]),
  ).join('.');
}

function rate(rng: Rng): string {
  const num = rng.pick([
    '0',
    '1',
    '10',
    '0.5',
    '0.125',
    '4',
    '4.3',
    '4294967295',
    '4294967296',
    '1e3',
    '.5',
    '5.',
    '-1',
    '999999999999999999999',
  ]);
  const unit = rng.pick([
    'B/s',
    'kB/s',
    'KB/s',
    'MB/s',
    'GB/s',
    'KiB/s',
    'MiB/s',
    'GiB/s',
    'bit/s',
    'kbit/s',
    'Mbit/s',
    'Gbit/s',
    'TB/s',
    'mb/s',
    'B',
    '/s',
    'MB/S',
    'constructor/s',
    'toString/s',
    '__proto__/s',
  ]);
  return `${rng.chance(0.2) ? ' ' : ''}${num}${rng.chance(0.2) ? rng.pick([' ', '  ', '\t']) : ''}${unit}${rng.chance(0.1) ? ' ' : ''}`;
}

function mutateText(s: string, rng: Rng): string {
  const chars = [...s];
  for (let i = 0, n = 1 + rng.int(3); i < n; i++) {
    const at = rng.int(chars.length + 1);
    const op = rng.int(3);
    if (op === 0) chars.splice(at, 1);
    else if (op === 1) chars.splice(at, 0, rng.pick(ODD));
    else chars.splice(at, 0, ...chars.slice(at, at + 1 + rng.int(6)));
  }
  return chars.join('');
}

type Kind = 'ipv4' | 'ipv6' | 'cidr' | 'host' | 'hostport' | 'rate';
interface ValueInput {
  kind: Kind;
  text: string;
}

function generate(rng: Rng): ValueInput {
  const kind = rng.pick(['ipv4', 'ipv6', 'cidr', 'host', 'hostport', 'rate'] as const);
  let text: string;
  switch (kind) {
    case 'ipv4':
      text = ipv4(rng);
      break;
    case 'ipv6':
      text = ipv6(rng);
      break;
    case 'cidr':
      text = `${address(rng)}${rng.chance(0.85) ? `/${rng.pick(['0', '1', '8', '24', '32', '33', '64', '128', '129', '007', '', '-1', String(rng.int(200))])}` : ''}`;
      break;
    case 'host':
      text = rng.chance(0.5) ? hostName(rng) : rng.chance(0.5) ? address(rng) : `[${ipv6(rng)}]`;
      break;
    case 'hostport': {
      const h = rng.chance(0.4) ? hostName(rng) : rng.chance(0.5) ? ipv4(rng) : `[${ipv6(rng)}]`;
      text = `${h}:${rng.pick(['0', '1', '80', '65535', '65536', '99999', '', '08080', String(rng.int(70000))])}`;
      break;
    }
    default:
      text = rate(rng);
  }
  if (rng.chance(0.25)) text = mutateText(text, rng);
  return { kind, text };
}

function sameBytes(a: readonly number[], b: readonly number[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkIPv6(text: string, bytes: number[]): void {
  if (bytes.length !== 16 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) {
    throw new OracleError(`parseIPv6("${text}") gave ${bytes.length} bytes ${JSON.stringify(bytes)}`);
  }
  if (!isIPv6(text)) throw new OracleError(`parseIPv6 accepts "${text}", which Node's parser refuses`);
  const formatted = formatAddress(bytes);
  if (!sameBytes(bytes, parseIPv6(formatted)))
    throw new OracleError(`"${text}" formats as "${formatted}", which parses to other bytes`);
}

function execute(input: ValueInput): void {
  const { kind, text } = input;
  if (kind === 'ipv4') {
    const b = parseIPv4(text);
    if (!b) return;
    if (!isIPv4(text)) throw new OracleError(`parseIPv4 accepts "${text}", which Node's parser refuses`);
    if (b.join('.') !== text) throw new OracleError(`parseIPv4("${text}") gave ${b.join('.')}`);
    return;
  }
  if (kind === 'ipv6') {
    const b = parseIPv6(text);
    if (b) checkIPv6(text, b);
    return;
  }
  if (kind === 'cidr') {
    const c = parseCidr(text);
    if (typeof c === 'string') return;
    const max = c.family === 4 ? 32 : 128;
    if (c.bytes.length * 8 !== max || c.prefix < 0 || c.prefix > max)
      throw new OracleError(`parseCidr("${text}") gave ${JSON.stringify(c)}`);
    const again = parseCidr(`${formatAddress(c.bytes)}/${c.prefix}`);
    if (
      typeof again === 'string' ||
      again.prefix !== c.prefix ||
      again.family !== c.family ||
      !sameBytes(c.bytes, again.bytes)
    ) {
      throw new OracleError(
        `CIDR "${text}" does not survive formatting: ${typeof again === 'string' ? again : JSON.stringify(again)}`,
      );
    }
    return;
  }
  if (kind === 'host') {
    if (hostProblem(text) !== undefined) return;
    const bare = text.startsWith('[') ? text.slice(1, -1) : text;
    if (bare.includes(':') && !isIPv6(bare))
      throw new OracleError(`host "${text}" is accepted but is no IPv6 address to Node`);
    if (/[\s\u0000-\u001f\u007f]/.test(text))
      throw new OracleError(`host "${JSON.stringify(text)}" with blanks or control characters is accepted`);
    return;
  }
  if (kind === 'hostport') {
    let hp: { host: string; port: number };
    try {
      hp = splitHostPort(text);
    } catch (err) {
      expectCoded(err);
      return;
    }
    if (!Number.isInteger(hp.port) || hp.port < 1 || hp.port > 65535)
      throw new OracleError(`splitHostPort("${text}") gave port ${hp.port}`);
    const again = splitHostPort(formatHostPort(hp.host, hp.port));
    if (again.host !== hp.host || again.port !== hp.port)
      throw new OracleError(`"${text}" does not survive formatHostPort`);
    return;
  }
  const problem = rateProblem(text);
  let bytes: number;
  try {
    bytes = parseRate(text);
  } catch (err) {
    expectCoded(err);
    if (problem === undefined)
      throw new OracleError(`rateProblem finds nothing wrong with "${text}" but parseRate refuses it`);
    return;
  }
  if (problem !== undefined)
    throw new OracleError(`parseRate accepts "${text}" although rateProblem says: ${problem}`);
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > MAX_RATE_BYTES_PER_SECOND)
    throw new OracleError(`rate "${text}" gave ${bytes} bytes per second`);
}

/** The config value parsers. */
export const configValues: Target<ValueInput> = {
  name: 'config-values',
  about:
    'parseIPv4, parseIPv6, parseCidr, hostProblem, splitHostPort and parseRate on values built from their grammars and changed; agreement with Node, format round trips, bounds',
  weight: 60_000,
  hangMs: 2000,
  generate,
  execute,
};
