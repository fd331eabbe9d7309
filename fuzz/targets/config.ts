/**
 * The client config parser. Valid configs are built from the config's own JSON Schema (generated
 * from the zod schema, so new fields are covered as they appear), then changed: wrong types,
 * numbers at and past their bounds, odd strings, unknown and prototype-named keys, duplicates,
 * depth; or changed as JSON text and read as a file's text. Properties: only
 * ConfigErrors; what parses parses again to the same thing, and each of its tunnels passes
 * parseTunnel alone.
 */
import { parseClientConfig, parseTunnel } from '../../src/config/client-config.js';
import { parseClientConfigText } from '../../src/config/client-config-file.js';
import { clientConfigJsonSchema } from '../../src/config/json-schema.js';
import { fingerprint, formatPublicKeyLine } from '../../src/identity/public-key.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import { identityOf } from '../lib/peer.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: Json[];
  const?: Json;
  default?: Json;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  anyOf?: Schema[];
  oneOf?: Schema[];
}

let schema: Schema | undefined;
function rootSchema(): Schema {
  schema ??= JSON.parse(clientConfigJsonSchema()) as Schema;
  return schema;
}

let known: string[] | undefined;
/** Strings known to be good for fields with a pattern or a parser behind them. */
function candidates(): string[] {
  if (known) return known;
  const raw = identityOf(Buffer.alloc(32, 3)).publicRaw;
  known = [
    '127.0.0.1:9000',
    '[::1]:9000',
    'vps.example.com:9000',
    formatPublicKeyLine(raw, 'server'),
    fingerprint(raw),
    'web',
    'a.b-c_d',
    '127.0.0.1',
    '::1',
    'localhost',
    '10.0.0.0/8',
    '2001:db8::/32',
    '192.0.2.1/32',
    '10MB/s',
    '512KiB/s',
    '100Mbit/s',
    'v1',
    'v2',
    'id_ed25519',
    '0.0.0.0',
    '[::]',
    '1024-65535',
    '10000-10100,2222',
    'debug',
    'info',
    '127.0.0.1:9100',
    '/etc/mtt/host_key',
  ];
  return known;
}

const regexes = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
  let re = regexes.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    regexes.set(pattern, re);
  }
  return re;
}

/** A valid value for `s`, as far as the JSON Schema tells. */
export function example(s: Schema, rng: Rng, depth: number): Json {
  const alt = s.anyOf ?? s.oneOf;
  if (alt && alt.length > 0) return example(rng.pick(alt), rng, depth);
  if (s.const !== undefined) return s.const;
  if (s.enum && s.enum.length > 0) return rng.pick(s.enum);
  if (s.default !== undefined && rng.chance(0.5)) return structuredClone(s.default);
  const type = Array.isArray(s.type) ? rng.pick(s.type) : s.type;
  switch (type) {
    case 'boolean':
      return rng.chance(0.5);
    case 'integer':
    case 'number': {
      const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 0);
      const hi = Math.min(
        s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 100_000),
        lo + 100_000,
      );
      const v = lo + rng.int(Math.max(1, Math.floor(hi - lo) + 1));
      return type === 'number' && rng.chance(0.3) ? Math.min(hi, v + 0.5) : v;
    }
    case 'string': {
      const re = s.pattern ? regex(s.pattern) : undefined;
      const fits = candidates().filter(
        (c) => (!re || re.test(c)) && c.length >= (s.minLength ?? 0) && c.length <= (s.maxLength ?? 1e9),
      );
      return fits.length > 0 ? rng.pick(fits) : 'x';
    }
    case 'array': {
      if (!s.items || depth > 3) return [];
      const n = rng.smallLen(Math.min(s.maxItems ?? 4, 4));
      return Array.from({ length: n }, () => example(s.items!, rng, depth + 1));
    }
    case 'object': {
      const out: { [k: string]: Json } = {};
      for (const [k, p] of Object.entries(s.properties ?? {})) {
        if (k === '$schema') continue;
        if (s.required?.includes(k) || rng.chance(0.5)) out[k] = example(p, rng, depth + 1);
      }
      return out;
    }
    default:
      return null;
  }
}

const NASTY_STRINGS = [
  '',
  ' ',
  '\0',
  '\u001b[2J',
  '\u202e',
  '\ud800',
  'é',
  '😀'.repeat(40),
  'a'.repeat(65),
  'a'.repeat(254),
  'x'.repeat(10_000),
  '8080',
  '1e3',
  'true',
  'null',
  '0x50',
  '-1',
  '../../etc/passwd',
  '__proto__',
];
const NASTY_NUMBERS = [
  0,
  -0,
  -1,
  0.5,
  1,
  0.049,
  0.05,
  0.1,
  63,
  64,
  65,
  65535,
  65536,
  3600,
  3600.0001,
  2 ** 31,
  2 ** 53 + 1,
  1e308,
  -1e308,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];
const ODD_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' name',
  'Name',
  'tunnels ',
  'x',
];

function oddValue(rng: Rng): Json {
  const r = rng.int(8);
  if (r === 0) return null;
  if (r === 1) return rng.chance(0.5);
  if (r === 2) return rng.pick(NASTY_NUMBERS);
  if (r === 3) return rng.pick(NASTY_STRINGS);
  if (r === 4) return [];
  if (r === 5) return {};
  if (r === 6) {
    let v: Json = rng.int(10);
    for (let i = 0, n = rng.int(200); i < n; i++) v = rng.chance(0.5) ? [v] : { a: v };
    return v;
  }
  return Array.from({ length: rng.smallLen(300) }, () => rng.pick(NASTY_NUMBERS));
}

/** All container paths of a JSON value (for picking where to mutate). */
function containers(
  v: Json,
  out: Array<Json[] | { [k: string]: Json }> = [],
): Array<Json[] | { [k: string]: Json }> {
  if (v !== null && typeof v === 'object') {
    out.push(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) containers(x, out);
  }
  return out;
}

export function mutateJson(root: Json, rng: Rng): Json {
  const all = containers(root);
  const n = 1 + rng.int(3);
  for (let k = 0; k < n && all.length > 0; k++) {
    const c = rng.pick(all);
    if (Array.isArray(c)) {
      const op = rng.int(4);
      if (op === 0 && c.length > 0)
        c.push(structuredClone(c[rng.int(c.length)]!)); // a duplicate
      else if (op === 1 && c.length > 0) c.splice(rng.int(c.length), 1);
      else if (op === 2 && c.length > 0) c[rng.int(c.length)] = oddValue(rng);
      else
        for (let i = 0, m = rng.pick([10, 300, 1000]); i < m && c.length > 0; i++)
          c.push(structuredClone(c[0]!));
      continue;
    }
    const keys = Object.keys(c);
    const op = rng.int(5);
    if (op === 0 && keys.length > 0) delete c[rng.pick(keys)];
    else if (op === 1)
      Object.defineProperty(c, rng.pick(ODD_KEYS), {
        value: oddValue(rng),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else if (keys.length > 0) {
      const key = rng.pick(keys);
      const now = c[key];
      if (typeof now === 'number' && op === 2)
        c[key] = rng.chance(0.5) ? rng.pick(NASTY_NUMBERS) : now + rng.pick([-1, 1, -0.5, 0.5, 1e-9]);
      else if (typeof now === 'string' && op === 2)
        c[key] = rng.chance(0.5) ? rng.pick(NASTY_STRINGS) : now + rng.pick(NASTY_STRINGS);
      else c[key] = oddValue(rng);
    }
  }
  return root;
}

export function mutateText(text: string, rng: Rng): string {
  const chars = [...text];
  for (let i = 0, n = 1 + rng.int(4); i < n; i++) {
    const at = rng.int(chars.length + 1);
    const op = rng.int(4);
    if (op === 0) chars.splice(at, 1);
    else if (op === 1)
      chars.splice(
        at,
        0,
        rng.pick([
          '"',
          '{',
          '}',
          '[',
          ']',
          ',',
          ':',
          '\\',
          '\\u0000',
          '\\ud800',
          '1e999',
          '-',
          '\n',
          '\ufeff',
        ]),
      );
    else if (op === 2) chars.splice(at, 0, ...chars.slice(at, at + rng.int(30)));
    else chars.length = at;
  }
  return chars.join('');
}

export interface ConfigInput {
  kind: 'object' | 'tunnel' | 'text';
  /** The object (kind object/tunnel), as JSON text so odd keys and numbers survive saving. */
  json: string;
  /** Values JSON cannot hold (NaN, Infinity, -0), put back at these paths. */
  specials: Array<{ path: Array<string | number>; value: 'NaN' | 'Infinity' | '-Infinity' | '-0' }>;
}

function special(v: number): ConfigInput['specials'][number]['value'] | undefined {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(v, -0)) return '-0';
  return undefined;
}

export function collectSpecials(v: Json, path: Array<string | number>, out: ConfigInput['specials']): void {
  if (typeof v === 'number') {
    const s = special(v);
    if (s) out.push({ path, value: s });
  } else if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) collectSpecials(x, [...path, i], out);
  } else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) collectSpecials(x, [...path, k], out);
}

export function restore(input: Pick<ConfigInput, 'json' | 'specials'>): unknown {
  const root = JSON.parse(input.json) as Json;
  for (const { path, value } of input.specials) {
    let c: unknown = root;
    for (const p of path.slice(0, -1)) c = (c as Record<string | number, unknown>)[p];
    const n =
      value === 'NaN'
        ? Number.NaN
        : value === 'Infinity'
          ? Number.POSITIVE_INFINITY
          : value === '-Infinity'
            ? Number.NEGATIVE_INFINITY
            : -0;
    if (c !== null && typeof c === 'object')
      (c as Record<string | number, unknown>)[path[path.length - 1]!] = n;
  }
  return root;
}

function generate(rng: Rng): ConfigInput {
  const kind = rng.weighted([
    [6, 'object'],
    [2, 'tunnel'],
    [2, 'text'],
  ] as const);
  const root = rootSchema();
  let value: Json =
    kind === 'tunnel' ? example(root.properties!.tunnels!.items!, rng, 1) : example(root, rng, 0);
  if (rng.chance(0.85)) value = mutateJson(value, rng);
  const specials: ConfigInput['specials'] = [];
  collectSpecials(value, [], specials);
  let json = JSON.stringify(value);
  if (kind === 'text') json = mutateText(json, rng);
  return { kind, json, specials };
}

function execute(input: ConfigInput): void {
  if (input.kind === 'text') {
    try {
      check(parseClientConfigText('/fuzz/client.json', input.json).config);
    } catch (err) {
      if (err instanceof OracleError) throw err;
      expectCoded(err);
    }
    return;
  }
  const value = restore(input);
  if (input.kind === 'tunnel') {
    let t: unknown;
    try {
      t = parseTunnel(value);
    } catch (err) {
      expectCoded(err);
      return;
    }
    if (JSON.stringify(parseTunnel(JSON.parse(JSON.stringify(t)))) !== JSON.stringify(t))
      throw new OracleError('a parsed tunnel parses differently again');
    return;
  }
  let cfg: ReturnType<typeof parseClientConfig>;
  try {
    cfg = parseClientConfig(value, 'fuzz');
  } catch (err) {
    expectCoded(err);
    return;
  }
  check(cfg);
}

function check(cfg: ReturnType<typeof parseClientConfig>): void {
  let again: unknown;
  try {
    again = parseClientConfig(JSON.parse(JSON.stringify(cfg)), 'again');
  } catch (err) {
    throw new OracleError(`a parsed config is refused when parsed again: ${(err as Error).message}`, {
      cause: err,
    });
  }
  // Compared as JSON: a -0 that JSON cannot carry is not a difference.
  if (JSON.stringify(again) !== JSON.stringify(cfg))
    throw new OracleError('a parsed config parses to something else again');
  for (const t of cfg.tunnels) {
    try {
      parseTunnel(JSON.parse(JSON.stringify(t)));
    } catch (err) {
      throw new OracleError(`a tunnel of a valid config fails parseTunnel: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

/** The client config parser. */
export const clientConfig: Target<ConfigInput> = {
  name: 'client-config',
  about:
    'parseClientConfig, parseTunnel and parseClientConfigText on configs built from the JSON Schema and changed (types, bounds, odd keys, duplicates, depth, broken JSON); only ConfigErrors, parse is idempotent',
  weight: 80_000,
  // A thousand tunnels take a few hundred milliseconds to validate, seconds on a loaded machine.
  hangMs: 10_000,
  setup: () => void rootSchema(),
  generate,
  execute,
};
