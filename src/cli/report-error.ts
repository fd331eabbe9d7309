/**
 * How the CLI reports a failure: a user's mistake is one line naming the problem and the fix (exit 2);
 * a bug prints its stack (exit 1). In JSON mode (see logging.ts) the same text is one JSON log line.
 * Everything printed is escaped: messages may quote a peer, a file or a path.
 */
import { ConfigError } from '../config/config-error.js';
import { IdentityError } from '../identity/identity-error.js';
import { Lz4UnavailableError } from '../protocol/compression.js';
import { isProtocolError } from '../protocol/errors.js';
import { escapeControls } from '../util/escape.js';
import { createLogger } from '../util/logger.js';
import type { LogFormat } from './logging.js';
import { UsageError } from './usage-error.js';

/** Error codes of a file or folder the user named that cannot be used: a user's mistake, not a bug. */
const FILE_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  ENOSPC: 'no space left on the device',
};

type SystemError = Error & {
  code?: string;
  port?: number;
  address?: string;
  syscall?: string;
  path?: string;
};

/** What to say about an error, and the exit code. */
export interface ErrorReport {
  /** One line (a config error lists its fields on further lines), not yet escaped. */
  message: string;
  exitCode: number;
  /** The error's stable code when it has one (ERR_KEY_EXISTS, EADDRINUSE, …). */
  code: string | undefined;
  /** False for a bug: the message is then the stack. */
  userError: boolean;
}

/** Classifies an error as a user's mistake or a bug, with its message. */
export function describeError(err: unknown): ErrorReport {
  const e = err as SystemError;
  const listenError = e?.syscall === 'listen' || e?.syscall === 'bind';
  const fileError = typeof e?.path === 'string' && e.code !== undefined && e.code in FILE_ERRORS;
  const userError =
    err instanceof UsageError ||
    err instanceof ConfigError ||
    err instanceof IdentityError ||
    err instanceof Lz4UnavailableError ||
    isProtocolError(err) ||
    e?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
    e?.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
    e?.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ||
    // The server's admin socket (src/server/admin-socket.ts): a path the admin can fix, not a bug.
    (typeof e?.code === 'string' && e.code.startsWith('ERR_ADMIN_SOCKET_')) ||
    e?.code === 'EADDRINUSE' ||
    e?.code === 'EADDRNOTAVAIL' ||
    (e?.code === 'EACCES' && listenError) ||
    fileError;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (userError) return { message: friendly(e), exitCode: 2, code, userError };
  return { message: `unexpected error: ${e?.stack ?? String(err)}`, exitCode: 1, code, userError };
}

/** Prints `err` as `format` asks (plain `mtt: …` lines, or a JSON log line) and returns the exit code. */
export function reportError(err: unknown, format: LogFormat = 'pretty'): number {
  const r = describeError(err);
  if (format === 'json') {
    createLogger({ level: 'error', format: 'json' }).error(r.message, {
      ...(r.code ? { code: r.code } : {}),
      exitCode: r.exitCode,
    });
  } else {
    // Our own multi-line messages (a config error's list) keep their lines; everything else is escaped.
    process.stderr.write(`mtt: ${escapeControls(r.message, { keepNewlines: true })}\n`);
  }
  return r.exitCode;
}

function friendly(e: SystemError): string {
  if (e.code === 'EADDRINUSE')
    return `${e.address ?? ''}:${e.port ?? ''} is already in use; choose another port`;
  if (e.code === 'EACCES' && (e.syscall === 'listen' || e.syscall === 'bind'))
    return `not allowed to listen on ${e.address ?? ''}:${e.port ?? ''}; use a port above 1023`;
  if (e.code === 'EADDRNOTAVAIL') return `${e.address ?? ''} is not an address of this machine; check --host`;
  if (e.code?.startsWith('ERR_PARSE_ARGS')) return `${e.message}; run with --help to see the options`;
  if (e.path !== undefined && e.code !== undefined && e.code in FILE_ERRORS) {
    const what = e.syscall === 'mkdir' ? 'create the folder' : e.syscall === 'open' ? 'open' : 'use';
    return `cannot ${what} ${e.path} (${FILE_ERRORS[e.code]}); choose a path this user can write to`;
  }
  return e.message;
}
