/**
 * What counts as a finding. A parser or decoder may only fail with its module's coded error
 * (ProtocolError, IdentityError, ConfigError); anything else is a crash. A coded error that wraps a
 * JavaScript bug (a TypeError caught by a catch-all and re-thrown as ERR_MALFORMED) is a crash too:
 * the wrapper must not hide it.
 */
import { AssertionError } from 'node:assert';
import { ConfigError } from '../../src/config/config-error.js';
import { IdentityError } from '../../src/identity/identity-error.js';
import { ProtocolError } from '../../src/protocol/errors.js';

/** A property the code must keep was broken (round trip, integrity, split invariance). */
export class OracleError extends Error {
  override readonly name = 'OracleError';
}

/** A case that did not finish in its time bound. */
export class HangError extends Error {
  override readonly name = 'HangError';
}

/** The kinds of finding a run reports. */
export type FindingKind = 'crash' | 'oracle' | 'hang' | 'leak' | 'server-down' | 'legit-client';

function isBugClass(err: unknown): boolean {
  return (
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError ||
    err instanceof AssertionError
  );
}

/** True for the coded errors a module may throw on bad input. */
export function isCoded(err: unknown): boolean {
  let coded = false;
  if (err instanceof ProtocolError) coded = typeof err.code === 'string' && err.code.startsWith('ERR_');
  else if (err instanceof IdentityError) coded = typeof err.code === 'string' && err.code.startsWith('ERR_');
  else if (err instanceof ConfigError) coded = err.message.length > 0;
  if (!coded) return false;
  // Walk the cause chain: a bug under a coded wrapper is still a bug.
  let cause = (err as Error).cause;
  for (let depth = 0; cause !== undefined && depth < 8; depth++) {
    if (isBugClass(cause)) return false;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return true;
}

/** Rethrows anything that is not a coded error; the runner then records it as a crash. */
export function expectCoded(err: unknown): void {
  if (!isCoded(err)) throw err;
}

/** The error's class name and code, for reports. */
export function errorLabel(err: unknown): string {
  if (!(err instanceof Error)) return `non-Error thrown: ${typeof err}`;
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}`;
}

/** One line plus the cause chain, for reports and finding files. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let out = `${errorLabel(err)}: ${err.message}`;
  let cause = err.cause;
  for (let depth = 0; cause !== undefined && depth < 8; depth++) {
    out += ` <- caused by ${cause instanceof Error ? `${errorLabel(cause)}: ${cause.message}` : String(cause)}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return out;
}

/** The innermost error's stack (where the bug is). */
export function deepestStack(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 8; depth++) {
    const cause = e instanceof Error ? e.cause : undefined;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/**
 * Groups findings that are the same bug: kind, error class, message with numbers blanked, and the
 * first stack frame inside the project.
 */
export function signatureOf(kind: FindingKind, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const frame =
    deepestStack(err)
      .split('\n')
      .find((l) => /\/(src|fuzz)\//.test(l) && !l.includes('/fuzz/lib/')) ?? '';
  const where = frame.replace(/^.*\/((src|fuzz)\/[^:)]+):(\d+).*$/, '$1:$3');
  return `${kind} ${errorLabel(err)} ${message.replace(/\d+/g, 'N').slice(0, 160)} @ ${where}`;
}
