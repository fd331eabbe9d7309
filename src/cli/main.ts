#!/usr/bin/env node
/**
 * The `mtt` command: a thin shell over the library. Each command parses its flags strictly, turns a
 * user's mistake into one clear line and a non-zero exit, and stops cleanly on SIGINT/SIGTERM.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolveLogFormat } from './logging.js';
import { peekFlag } from './parse-command.js';
import { reportError } from './report-error.js';
import { UsageError } from './usage-error.js';

export { describeError, reportError } from './report-error.js';

/** The version from package.json (dist/src/cli/main.js is three folders below it, in a clone and in the package). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

const HELP = `mtt — MiniTCPTunnel: put a service in your LAN on a public server's port, encrypted.

Usage: mtt <command> [options]

  mtt demo                          run server, client, a sample service and one tunnel on loopback
  mtt server [--config FILE]        run the public side (mtt server --help)
  mtt status [--json]               what the server on this machine is doing (mtt status --help)
  mtt client --config FILE          run the LAN side (mtt client --help)
  mtt client --server HOST:PORT -R PUBLIC_PORT:HOST:PORT
                                    the same with one-line tunnels, no file
  mtt gui --config FILE             run the client with its dashboard and tray icon (mtt gui --help)
  mtt keygen [-f FILE]              make an Ed25519 identity key (mtt keygen --help)
  mtt allow KEY.pub                 add a client key to the server's allow-list (mtt allow --help)
  mtt allow --list | --remove KEY   list the allowed keys, or remove one
  mtt check --config FILE           check a client or server config without starting anything

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
        process.stdout.write(`mtt ${version()}\n`);
        return 0;
      // Each command loads only what it needs: a server never loads the client or the config schema.
      case 'server':
        return await (await import('./server-command.js')).runServer(rest, controller.signal);
      case 'status':
        return await (await import('./status-command.js')).runStatus(rest);
      case 'client':
        return await (await import('./client-command.js')).runClient(rest, controller.signal);
      case 'keygen':
        return await (await import('./keys-commands.js')).runKeygen(rest);
      case 'allow':
        return await (await import('./keys-commands.js')).runAllow(rest);
      case 'check':
        return await (await import('./check-command.js')).runCheck(rest);
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
    // An error is reported in the format the command's logs use (JSON when not on a terminal).
    return reportError(err, resolveLogFormat(peekFlag(rest, 'log-format')));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
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
      process.exitCode = reportError(err, resolveLogFormat(peekFlag(process.argv, 'log-format')));
    },
  );
}
