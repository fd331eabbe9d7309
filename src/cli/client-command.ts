/** `mtt client`: start a client from its config file, stop it on SIGINT/SIGTERM. */
import { ClientFailedError, startClientFromConfig } from '../client/index.js';
import { ConfigError } from '../config/config-error.js';
import { LOG_OPTIONS, makeLogger } from './logging.js';
import { parseCommand } from './main.js';

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
    ...LOG_OPTIONS,
  });
  if (values.help) {
    process.stdout.write(CLIENT_HELP);
    return 0;
  }
  if (values.config === undefined) {
    throw new ConfigError('--config FILE is required (mtt client --help shows the format)', '--config');
  }
  const log = makeLogger(values);
  const client = await startClientFromConfig(values.config as string, {
    exitOnFailure: values['exit-on-failure'] === true,
    log,
    signal,
  });
  const snap = client.state.snapshot();
  process.stdout.write(
    `mtt client for ${snap.server.address}\n` +
      `  identity:    ${client.identityPath}\n` +
      `  public key:  ${snap.identity.publicKeyLine}\n` +
      `  fingerprint: ${snap.identity.fingerprint}\n` +
      `The server admin allows this client with: mtt allow '${snap.identity.publicKeyLine}'\n`,
  );
  try {
    await client.closed;
  } catch (err) {
    if (err instanceof ClientFailedError) {
      process.stderr.write(`mtt: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  return 0;
}
