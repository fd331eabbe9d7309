/**
 * Seed messages, built at run time from the protocol's own sample of every message type (the
 * fixtures the codec tests keep complete), and varied field by field through the real encoder. No
 * wire bytes are written here: when the wire changes, the seeds change with it.
 */
import { encodeMessage, type Message, MsgType } from '../../src/protocol/messages.js';
import { sampleMessages } from '../../test/protocol/fixtures.js';
import { ENUM_TABLES, type Field, fieldsOf, NASTY_BYTES } from './mutate.js';
import type { Rng } from './rng.js';

/** Which side sends a message type, from the decoders themselves (a type a decoder refuses as
 * unexpected is not that side's). */
export interface SeedSet {
  all: Message[];
  /** Field lists of every sample, donors for splicing. */
  donors: Field[][];
}

let cached: SeedSet | undefined;

/** The samples, checked to cover every type code the message layer defines. */
export function seeds(): SeedSet {
  if (cached) return cached;
  const all = sampleMessages();
  const covered = new Set(all.map((m) => encodeMessage(m)[0]));
  const missing = Object.entries(MsgType).filter(([, code]) => !covered.has(code));
  if (missing.length > 0) {
    throw new Error(
      `the protocol samples (test/protocol/fixtures.ts) miss ${missing.map(([n]) => n).join(', ')}; ` +
        'add one sample of each so the fuzzer covers them',
    );
  }
  cached = { all, donors: all.map((m) => fieldsOf(m)) };
  return cached;
}

function enumPeers(value: string): string[] | undefined {
  for (const [, table] of ENUM_TABLES) if (Object.hasOwn(table, value)) return Object.keys(table);
  return undefined;
}

function randomString(rng: Rng): string {
  const n = rng.smallLen(80);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    if (r < 6) s += String.fromCharCode(0x20 + rng.int(95));
    else if (r < 8) s += rng.pick(NASTY_BYTES).toString('utf8');
    else s += String.fromCodePoint(rng.int(0x11000));
  }
  if (rng.chance(0.05)) s = 'x'.repeat(rng.pick([63, 64, 65, 1023, 1024, 1025]));
  return s;
}

const INTS = [0, 1, 2, 80, 255, 256, 1023, 1024, 8080, 30_000, 65_535, 65_536, 0x7fffffff, 0xffffffff];

function varyValue(v: unknown, rng: Rng, depth: number): unknown {
  if (typeof v === 'number') {
    return rng.chance(0.5) ? rng.pick(INTS) : rng.int(2) === 0 ? rng.u32() : rng.int(65_536);
  }
  if (typeof v === 'boolean') return rng.chance(0.5);
  if (typeof v === 'string') {
    const peers = enumPeers(v);
    if (peers && rng.chance(0.9)) return rng.pick(peers);
    return randomString(rng);
  }
  if (Buffer.isBuffer(v)) return rng.chance(0.9) ? rng.bytes(v.length) : rng.bytes(rng.smallLen(80));
  if (Array.isArray(v)) {
    const n = rng.smallLen(40);
    if (v.length === 0) return v;
    return Array.from({ length: n }, () => vary(rng.pick(v), rng, depth + 1));
  }
  if (v !== null && typeof v === 'object') return vary(v, rng, depth + 1);
  return v;
}

/** A copy of `msg` with some leaves replaced (the type is kept). */
export function vary<T>(msg: T, rng: Rng, depth = 0): T {
  if (depth > 4 || msg === null || typeof msg !== 'object') return msg;
  if (Buffer.isBuffer(msg)) return varyValue(msg, rng, depth) as T;
  const out: Record<string, unknown> = {};
  const p = 0.15 + rng.int(4) * 0.2;
  for (const [k, v] of Object.entries(msg as Record<string, unknown>)) {
    if (k === 'type' || k === 'pieces') {
      if (k === 'type') out[k] = v;
      continue;
    }
    out[k] = rng.chance(p) ? varyValue(v, rng, depth) : v;
  }
  // Data keeps its payload behind a getter in pieces form; a plain copy is enough here.
  if ((msg as { type?: string }).type === 'Data' && !('payload' in out)) {
    out.payload = (msg as unknown as { payload: Buffer }).payload;
  }
  return out as T;
}

/**
 * A sample, possibly varied; always one the encoder accepts. `types` narrows it to those message
 * types: a list, not a predicate, so that no random choice can empty the pool (a predicate that drew
 * from the generator once did, in session case 96 of seed 3545218610).
 */
export function seedMessage(rng: Rng, types?: readonly Message['type'][]): Message {
  const all = seeds().all;
  const pool = types ? all.filter((m) => types.includes(m.type)) : all;
  if (pool.length === 0) throw new RangeError(`the protocol samples hold none of ${types?.join(', ')}`);
  const base = rng.pick(pool);
  if (rng.chance(0.4)) return base;
  for (let attempt = 0; attempt < 4; attempt++) {
    const m = vary(base, rng);
    try {
      encodeMessage(m);
      return m;
    } catch {
      // The encoder refuses values out of range (a port above 65535): try another variation.
    }
  }
  return base;
}
