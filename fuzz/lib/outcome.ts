/**
 * What counts as a finding. A parser or decoder may only fail with its module's coded error
 * (ProtocolError, IdentityError, ConfigError); anything else is a crash. A coded error that wraps a
 * JavaScript bug (a TypeError caught by a catch-all and re-thrown as ERR_MALFORMED) is a crash too:
 * the wrapper must not hide it.
 *
 * The fuzzer's own bugs are not findings in mtt: a JavaScript bug (TypeError, RangeError,
 * ReferenceError, SyntaxError) raised in the campaign's code (fuzz/, test/) rather than in src/ is a
 * harness error. It fails the run just the same, under its own name, so that neither hides the
 * other: whatever is not clearly the harness's (an error raised in src/, one without a frame of
 * ours, a broken property, a hang) stays a finding.
 */
import { AssertionError } from 'node:assert';
import { fileURLToPath } from 'node:url';
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

/** The kinds of finding a run reports; `harness` is the fuzzer's own bug, reported apart. */
export type FindingKind = 'crash' | 'oracle' | 'hang' | 'leak' | 'server-down' | 'legit-client' | 'harness';

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
  const e = deepest(err);
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/** The compiled project (dist/), whose top folders tell product code (src/) from the campaign's. */
const ROOT_URL = new URL('../../', import.meta.url).href;
const ROOT_PATH = fileURLToPath(ROOT_URL);

/** The stack's frames inside the project, innermost first, as `src/protocol/frame.js:12`. */
export function projectFrames(stack: string): string[] {
  const out: string[] = [];
  for (const line of stack.split('\n')) {
    if (!/^\s+at /.test(line)) continue;
    for (const root of [ROOT_URL, ROOT_PATH]) {
      const at = line.indexOf(root);
      if (at < 0) continue;
      const m = /^([^:)]+):(\d+)/.exec(line.slice(at + root.length));
      if (m && !m[1]!.startsWith('node_modules/')) out.push(`${m[1]}:${m[2]}`);
      break;
    }
  }
  return out;
}

/** The innermost error of a cause chain. */
function deepest(err: unknown): unknown {
  let e = err;
  for (let depth = 0; depth < 8; depth++) {
    const cause = e instanceof Error ? e.cause : undefined;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  return e;
}

/**
 * True when the campaign's own code has a bug: the innermost error is a JavaScript bug class
 * raised in fuzz/ or test/ (its first frame in the project is there, Node's own frames skipped),
 * not in src/. A broken property (OracleError), a hang, an assertion, an error raised in src/, and
 * one with no frame of ours are never the harness's.
 */
export function isHarnessBug(err: unknown): boolean {
  if (err instanceof OracleError || err instanceof HangError) return false;
  const inner = deepest(err);
  if (
    !(
      inner instanceof TypeError ||
      inner instanceof RangeError ||
      inner instanceof ReferenceError ||
      inner instanceof SyntaxError
    )
  )
    return false;
  const first = projectFrames(inner.stack ?? '')[0];
  return first !== undefined && !first.startsWith('src/');
}

/**
 * Groups findings that are the same bug: kind, error class, message with numbers blanked, and the
 * first stack frame inside the project (past the campaign's runner and helpers, fuzz/lib/).
 */
export function signatureOf(kind: FindingKind, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const frames = projectFrames(deepestStack(err));
  const where =
    (kind === 'harness' ? frames[0] : frames.find((f) => !f.startsWith('fuzz/lib/'))) ?? frames[0] ?? '';
  return `${kind} ${errorLabel(err)} ${message.replace(/\d+/g, 'N').slice(0, 160)} @ ${where}`;
}
