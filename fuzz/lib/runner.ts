/**
 * Runs cases of one target: the loop shared by the worker (a campaign) and by --replay / --case.
 * Every case is generated from its own seeded generator, so a finding names (seed, target, index)
 * and its input, and either reproduces it.
 */
import { performance } from 'node:perf_hooks';
import {
  deepestStack,
  describeError,
  type FindingKind,
  HangError,
  isHarnessBug,
  OracleError,
  signatureOf,
} from './outcome.js';
import { Rng } from './rng.js';
import { type Target, toJson } from './target.js';

/** One finding, as saved to a file. */
export interface Finding {
  kind: FindingKind;
  target: string;
  seed: number;
  index: number;
  signature: string;
  error: string;
  stack: string;
  /** The input, as plain JSON (Buffers as {hex}). */
  input: unknown;
  /** How many more cases hit the same signature. */
  repeats?: number;
  /** Anything else worth keeping (the live server's transcript, stderr). */
  detail?: unknown;
}

/** Turns what a case threw into a finding. */
export function findingOf(
  target: string,
  seed: number,
  index: number,
  input: unknown,
  err: unknown,
): Finding {
  const kind: FindingKind =
    err instanceof OracleError
      ? 'oracle'
      : err instanceof HangError
        ? 'hang'
        : isHarnessBug(err)
          ? 'harness'
          : 'crash';
  return {
    kind,
    target,
    seed,
    index,
    signature: signatureOf(kind, err),
    error: describeError(err),
    stack: deepestStack(err),
    input: toJson(input),
  };
}

/** Runs one case; resolves with the error it threw (if any) and how long it took. */
export async function runCase<I>(target: Target<I>, input: I): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    const r = target.execute(input);
    if (r instanceof Promise) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new HangError(`case did not settle within ${target.hangMs} ms`)),
          target.hangMs,
        );
      });
      try {
        await Promise.race([r, limit]);
      } finally {
        clearTimeout(timer);
      }
    }
  } catch (err) {
    return { error: err, ms: performance.now() - t0 };
  }
  const ms = performance.now() - t0;
  if (ms > target.hangMs)
    return { error: new HangError(`case took ${Math.round(ms)} ms (limit ${target.hangMs} ms)`), ms };
  return { error: undefined, ms };
}

/** The input of case `index`, regenerated. */
export function caseInput<I>(target: Target<I>, seed: number, index: number): I {
  return target.generate(Rng.forCase(seed, target.name, index));
}
