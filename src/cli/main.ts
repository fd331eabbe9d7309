#!/usr/bin/env node
/**
 * The `mtt` command: a thin shell over the library. Each command parses its flags strictly, turns a
 * user's mistake into one clear line and a non-zero exit, and stops cleanly on SIGINT/SIGTERM.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { IdentityError } from '../identity/index.js';
import { isProtocolError } from '../protocol/errors.js';
import { UsageError } from './usage-error.js';

const VERSION = '0.1.0';

const HELP = `mtt — MiniTCPTunnel: put a service in your LAN on a public server's port, encrypted.

Usage: mtt <command> [options]

  mtt demo                          run server, client, a sample service and one tunnel on loopback
  mtt server [options]              run the public side (mtt server --help)
  mtt client --config FILE          run the LAN side (mtt client --help)
  mtt gui --config FILE             run the client with its dashboard and tray icon (mtt gui --help)
  mtt keygen [-f FILE]              make an Ed25519 identity key (mtt keygen --help)
  mtt allow KEY.pub                 add a client key to the server's allow-list (mtt allow --help)

Options: --help, --version
`;

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      case '--version':
      case '-V':
        process.stdout.write(`mtt ${VERSION}\n`);
        return 0;
      // Each command loads only what it needs: a server never loads the client or the config schema.
      case 'server':
        return await (await import('./server-command.js')).runServer(rest, controller.signal);
      case 'client':
        return await (await import('./client-command.js')).runClient(rest, controller.signal);
      case 'keygen':
        return await (await import('./keys-commands.js')).runKeygen(rest);
      case 'allow':
        return await (await import('./keys-commands.js')).runAllow(rest);
      case 'demo':
        return await (await import('./demo.js')).runDemo(rest, controller.signal);
      case 'gui': {
        const { runGui } = await import('./gui-command.js');
        return await runGui(rest, controller.signal);
      }
      default:
        throw new UsageError(`unknown command "${command}"; run mtt --help to see the commands`);
    }
  } catch (err) {
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

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

/** One line for a user's mistake; the stack only for bugs. */
export function reportError(err: unknown): number {
  const e = err as SystemError;
  const listenError = e?.syscall === 'listen' || e?.syscall === 'bind';
  const fileError = typeof e?.path === 'string' && e.code !== undefined && e.code in FILE_ERRORS;
  const userError =
    err instanceof UsageError ||
    err instanceof ConfigError ||
    err instanceof IdentityError ||
    isProtocolError(err) ||
    e?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
    e?.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
    e?.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ||
    e?.code === 'EADDRINUSE' ||
    e?.code === 'EADDRNOTAVAIL' ||
    (e?.code === 'EACCES' && listenError) ||
    fileError;
  if (userError) {
    process.stderr.write(`mtt: ${friendly(e)}\n`);
    return 2;
  }
  process.stderr.write(`mtt: unexpected error: ${e?.stack ?? String(err)}\n`);
  return 1;
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

/** Flags of one command: name -> string or boolean, with an optional one-letter alias. */
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** parseArgs, strict, with --help added; unknown flags throw ERR_PARSE_ARGS_UNKNOWN_OPTION. */
export function parseCommand(
  argv: string[],
  options: FlagSpec,
  allowPositionals = false,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { help: { type: 'boolean', short: 'h' }, ...options },
    allowPositionals,
    strict: true,
  });
  return { values: values as Record<string, string | boolean | undefined>, positionals };
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.exitCode = reportError(err);
    },
  );
}
