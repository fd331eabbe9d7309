/** `mtt client`: start a client from its config file, stop it on SIGINT/SIGTERM. */
import { ClientFailedError, startClientFromConfig } from '../client/index.js';
import { ConfigError } from '../config/config-error.js';
import { escapeControls } from '../util/escape.js';
import { makeLogging } from './logging.js';
import { checkLz4 } from './lz4-check.js';
import { parseCommand } from './parse-command.js';

const CLIENT_HELP = `Usage: mtt client --config FILE [--exit-on-failure]

Runs the LAN side: keeps the control channel to the server up and serves the tunnels in FILE.
The config format is in the README ("Config reference") and schema/client-config.schema.json.

  --config FILE        the client config (JSON)
  --exit-on-failure    exit with status 1 when the connection fails, instead of retrying (for systemd)
  --log-level LEVEL    debug, info, warn or error (default info)
  --log-format FORMAT  json or pretty (default: pretty on a terminal)
`;

/** mtt client */
export async function runClient(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, {
    config: { type: 'string', short: 'c' },
    'exit-on-failure': { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(CLIENT_HELP);
    return 0;
  }
  const logging = makeLogging(values);
  const { log } = logging;
  checkLz4(log);
  if (values.config === undefined) {
    throw new ConfigError('--config FILE is required (mtt client --help shows the format)', '--config');
  }
  const client = await startClientFromConfig(values.config as string, {
    exitOnFailure: values['exit-on-failure'] === true,
    log,
    signal,
  });
  const snap = client.state.snapshot();
  const allow = `mtt allow '${snap.identity.publicKeyLine}'`;
  logging.banner(
    `mtt client for ${snap.server.address}\n` +
      `  identity:    ${client.identityPath}\n` +
      `  public key:  ${snap.identity.publicKeyLine}\n` +
      `  fingerprint: ${snap.identity.fingerprint}\n` +
      `The server admin allows this client with: ${allow}\n`,
    'mtt client started',
    {
      server: snap.server.address,
      identity: client.identityPath,
      publicKey: snap.identity.publicKeyLine,
      fingerprint: snap.identity.fingerprint,
      allowCommand: allow,
    },
  );
  try {
    await client.closed;
  } catch (err) {
    if (err instanceof ClientFailedError) {
      // --exit-on-failure: the last error, as a person or a log collector reads it.
      if (logging.format === 'json') log.error(err.message, { exitCode: 1, exitOnFailure: true });
      else process.stderr.write(`mtt: ${escapeControls(err.message)}\n`);
      return 1;
    }
    throw err;
  }
  return 0;
}
