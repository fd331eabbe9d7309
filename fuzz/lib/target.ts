/** What a fuzz target is: a generator of plain-data inputs and a function that runs one. */
import type { Rng } from './rng.js';

/** One fuzz target. Inputs are plain data (Buffers, numbers, strings, arrays), so they can be saved. */
export interface Target<I = unknown> {
  /** Name used by --target and in reports. */
  readonly name: string;
  /** One line: what it drives and which properties it checks. */
  readonly about: string;
  /** Share of the in-process inputs of a full run (and of the time with --seconds). */
  readonly weight: number;
  /** A case slower than this (ms) is a hang. Async cases are raced against it; sync ones are
   * watched from outside (a worker that stops making progress is terminated). */
  readonly hangMs: number;
  /** Environment of its worker (and of a replay), e.g. MTT_LZ4=wasm to run the fallback codec. */
  readonly env?: Readonly<Record<string, string>>;
  /** Runs once per worker before the first case (self-checks, key pools). */
  setup?(): void | Promise<void>;
  /** Builds one case from its generator. Must not throw. */
  generate(rng: Rng): I;
  /** Runs one case. Returns normally for every expected outcome (a coded error included); throws
   * anything else: an OracleError for a broken property, the error itself for a crash. */
  execute(input: I): void | Promise<void>;
}

/** Buffers become {hex}, bigints {bigint}, so inputs survive JSON. */
export function toJson(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { hex: Buffer.from(v).toString('hex') };
  if (typeof v === 'bigint') return { bigint: v.toString() };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJson(x);
    return out;
  }
  return v;
}

/** The inverse of toJson. */
export function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.hex === 'string') return Buffer.from(o.hex, 'hex');
    if (keys.length === 1 && typeof o.bigint === 'string') return BigInt(o.bigint);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = fromJson(x);
    return out;
  }
  return v;
}
