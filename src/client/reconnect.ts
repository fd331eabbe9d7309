/**
 * The client's reconnect policy: how a failed connection attempt is read (the server not reached at
 * all, a refused login, anything else) and how long to wait before the next one. ControlClient's loop
 * asks this module and waits; nothing here touches a socket.
 */
import { AuthRejectedError, isProtocolError } from '../protocol/errors.js';

/**
 * While the server cannot be reached at all (refused, unreachable, timed out), the client tries again
 * at least this often, and dials a fresh attempt this often while one is pending.
 */
export const RECONNECT_PROBE_MS = 1_000;
/** First wait before reconnecting after a failed login; doubles (with jitter) up to the maximum. */
export const RECONNECT_MIN_MS = 500;
/** Longest wait for the TCP connection to the server (each data channel's too). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Failures that say the server was not reached at all (nothing was refused). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
]);

/** Why one connection attempt failed, as the reconnect loop needs it. */
export interface AttemptFailure {
  /** One line for the log and the GUI. */
  why: string;
  /** Nothing answered: no refusal, just no server (yet). */
  unreachable: boolean;
  /** The server (or the pin) refused this client: the reason and the message to show. */
  rejected?: { reason: string; message: string };
}

/** Reads a failed attempt's error. */
export function classifyFailure(err: unknown): AttemptFailure {
  const failure: AttemptFailure = {
    why: errorText(err),
    unreachable: UNREACHABLE.has((err as NodeJS.ErrnoException)?.code ?? ''),
  };
  if (err instanceof AuthRejectedError) failure.rejected = { reason: err.reason, message: err.message };
  else if (isProtocolError(err) && err.code === 'ERR_SERVER_KEY_MISMATCH') {
    failure.rejected = { reason: 'server_key_mismatch', message: err.message };
  }
  return failure;
}

/** How long to wait after the `attempt`-th failure in a row. */
export function reconnectDelay(
  attempt: number,
  failure: AttemptFailure,
  minMs: number,
  maxMs: number,
): number {
  // Another live client holds this key: retrying soon would only refuse us again.
  if (failure.rejected?.reason === 'in_use') return Math.round(maxMs * (0.9 + Math.random() * 0.1));
  const delay = backoff(attempt, minMs, maxMs);
  // Nothing answered at all: try again soon, so the client is back soon after the server or link.
  return failure.unreachable ? Math.min(delay, RECONNECT_PROBE_MS) : delay;
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped. */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** An error as one line, with the likely fix for the common ones. */
export function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return 'connection refused (is the server running?)';
  if (e?.code === 'ENOTFOUND') return `host not found (${e.message})`;
  return e?.message ?? String(err);
}
