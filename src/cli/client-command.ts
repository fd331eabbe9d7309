/** `mtt client`: start a client from its config file or from the command line, stop it on SIGINT/SIGTERM. */
import { resolve } from 'node:path';
import { optionsFromConfig } from '../client/client.js';
import {
  ClientFailedError,
  loadClientIdentity,
  startClient,
  startClientFromConfig,
} from '../client/index.js';
import { withClientMetrics } from '../client/metrics.js';
import { parseClientConfig } from '../config/client-config.js';
import { ConfigError } from '../config/config-error.js';
import { defaultPaths } from '../config/paths.js';
import { escapeControls } from '../util/escape.js';
import type { Logger } from '../util/logger.js';
import { makeLogging } from './logging.js';
import { checkLz4 } from './lz4-check.js';
import { type FlagValues, parseCommand } from './parse-command.js';
import { oneLineConfig } from './remote-forward.js';

const CLIENT_HELP = `Usage: mtt client --config FILE [--exit-on-failure]
       mtt client --server HOST[:PORT] [--server-key KEY] -R PUBLIC_PORT:HOST:PORT [-R …] [--identity FILE]

Runs the LAN side: keeps the control channel to the server up and serves the tunnels, from FILE
(the format is in the README, "Config reference", and schema/client-config.schema.json) or from
the command line, as ssh -R writes them.

  --config FILE             the client config (JSON); tunnel changes made elsewhere are saved to it
  --server HOST[:PORT]      the server's control address (port 9000 when left out; IPv6 in brackets)
  --server-key KEY          pin the server: its key line ("ssh-ed25519 AAAA…") or fingerprint
                            ("SHA256:…"); without it the key is trusted on first use
  -R PUBLIC_PORT:HOST:PORT  open PUBLIC_PORT on the server and forward it to HOST:PORT here
                            (repeat for more tunnels; e.g. -R 10080:127.0.0.1:3000, -R 10022:[::1]:22)
  -i, --identity FILE       the client key (default ${defaultPaths.identity()}, created on first run)
  --metrics ADDR:PORT       serve Prometheus text on http://ADDR:PORT/metrics (and /healthz, /readyz);
                            also the config field "metrics"
  --exit-on-failure         exit with status 1 when the connection fails, instead of retrying (for systemd)
  --log-level LEVEL         debug, info, warn or error (default info)
  --log-format FORMAT       json or pretty (default: pretty on a terminal)
`;

/** mtt client */
export async function runClient(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, {
    config: { type: 'string', short: 'c' },
    server: { type: 'string' },
    'server-key': { type: 'string' },
    remote: { type: 'string', short: 'R', multiple: true },
    identity: { type: 'string', short: 'i' },
    'exit-on-failure': { type: 'boolean' },
    metrics: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(CLIENT_HELP);
    return 0;
  }
  const logging = makeLogging(values);
  const { log } = logging;
  checkLz4(log);
  const oneLine = ['server', 'server-key', 'remote', 'identity'].filter((f) => values[f] !== undefined);
  if (values.config !== undefined && oneLine.length > 0) {
    throw new ConfigError(
      `give either --config FILE or --server/-R on the command line, not both (${oneLine[0] === 'remote' ? '-R' : `--${oneLine[0]}`} was given with --config)`,
      '--config',
    );
  }
  if (values.config === undefined && values.server === undefined) {
    throw new ConfigError(
      '--config FILE or --server HOST:PORT -R PUBLIC_PORT:HOST:PORT is required (mtt client --help)',
      '--config',
    );
  }
  const exitOnFailure = values['exit-on-failure'] === true;
  const metrics = values.metrics as string | undefined;
  if (metrics !== undefined && values.config !== undefined) checkMetricsFlag(metrics);
  const client =
    values.config !== undefined
      ? await startClientFromConfig(values.config as string, {
          exitOnFailure,
          log,
          signal,
          ...(metrics !== undefined ? { metrics } : {}),
        })
      : await startOneLineClient(values, log, exitOnFailure, signal);
  const snap = client.state.snapshot();
  const m = client.metricsAddress;
  const metricsUrl = m
    ? `http://${m.family === 'IPv6' ? `[${m.address}]` : m.address}:${m.port}/metrics`
    : undefined;
  const allow = `mtt allow '${snap.identity.publicKeyLine}'`;
  logging.banner(
    `mtt client for ${snap.server.address}\n` +
      `  identity:    ${client.identityPath}\n` +
      `  public key:  ${snap.identity.publicKeyLine}\n` +
      `  fingerprint: ${snap.identity.fingerprint}\n` +
      (metricsUrl ? `  metrics:     ${metricsUrl}\n` : '') +
      `The server admin allows this client with: ${allow}\n`,
    'mtt client started',
    {
      server: snap.server.address,
      identity: client.identityPath,
      publicKey: snap.identity.publicKeyLine,
      fingerprint: snap.identity.fingerprint,
      allowCommand: allow,
      metrics: metricsUrl,
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

/** A client from --server, --server-key, -R and --identity: nothing is read from or saved to a file. */
async function startOneLineClient(
  values: FlagValues,
  log: Logger,
  exitOnFailure: boolean,
  signal: AbortSignal,
) {
  const forwards = (values.remote as string[] | undefined) ?? [];
  if (forwards.length === 0) {
    throw new ConfigError(
      '--server needs at least one -R PUBLIC_PORT:HOST:PORT (e.g. -R 10080:127.0.0.1:3000)',
      '-R',
    );
  }
  const config = oneLineConfig({
    server: values.server as string,
    serverKey: values['server-key'] as string | undefined,
    identity: values.identity as string | undefined,
    forwards,
    metrics: values.metrics as string | undefined,
  });
  const identityPath = config.identity === undefined ? undefined : resolve(config.identity);
  const { identity, path } = await loadClientIdentity(
    { path: '', config, raw: {}, text: '', identityPath, knownServersPath: undefined },
    log,
  );
  const client = await withClientMetrics(config.metrics, (observer) =>
    startClient({
      ...optionsFromConfig(config, identity, defaultPaths.knownServers()),
      ...(observer ? { observer } : {}),
      exitOnFailure,
      log,
      signal,
    }),
  );
  return Object.assign(client, { identityPath: path });
}

/** --metrics with --config: checked by the config schema's own rule, named by its flag. */
function checkMetricsFlag(metrics: string): void {
  try {
    parseClientConfig({ server: 'h:1', metrics }, 'the command line');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const issue = err.issues.find((i) => i.field === 'metrics');
    if (issue) throw new ConfigError(`--metrics: ${issue.message}`, '--metrics');
  }
}
