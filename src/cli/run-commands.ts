/** `mtt server` and `mtt client`: start a library instance, stop it on SIGINT/SIGTERM. */
import { once } from 'node:events';
import { resolve } from 'node:path';
import { ClientFailedError, startClientFromConfig } from '../client/index.js';
import { splitHostPort } from '../config/client-config.js';
import { ConfigError } from '../config/config-error.js';
import { defaultPaths } from '../config/paths.js';
import {
  fingerprint,
  formatPublicKeyLine,
  loadOrCreateHostKey,
  type PortRange,
  parsePortRanges,
} from '../identity/index.js';
import { startServer } from '../server/index.js';
import { createLogger, type Logger, type LogLevel } from '../util/logger.js';
import { parseCommand } from './main.js';

const LOG_OPTIONS = {
  'log-level': { type: 'string' as const },
  'log-format': { type: 'string' as const },
};

function makeLogger(values: Record<string, unknown>): Logger {
  const level = (values['log-level'] as string | undefined) ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    throw new ConfigError(`--log-level must be debug, info, warn or error, not "${level}"`, '--log-level');
  }
  const format = values['log-format'] as string | undefined;
  if (format !== undefined && format !== 'json' && format !== 'pretty') {
    throw new ConfigError(`--log-format must be json or pretty, not "${format}"`, '--log-format');
  }
  return createLogger({ level: level as LogLevel, ...(format ? { format } : {}) });
}

function seconds(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new ConfigError(`${flag} must be a positive number of seconds`, flag);
  return n * 1000;
}

const SERVER_HELP = `Usage: mtt server [options]

Runs the public side: clients in the allow-list connect here and open public ports.

  --port PORT            control port (default 9000)
  --host ADDR            control listen address (default 0.0.0.0)
  --host-key FILE        server identity; created on first start (default ${defaultPaths.hostKey()})
  --allowed-keys FILE    client allow-list, authorized_keys style, applied live (default ${defaultPaths.allowedKeys()})
  --allow-ports RANGES   public ports clients may open, e.g. 10000-10100,2222 (default 1024-65535)
  --public-host ADDR     address the public ports listen on (default 0.0.0.0)
  --metrics ADDR:PORT    serve Prometheus text on http://ADDR:PORT/metrics
  --heartbeat SECONDS    heartbeat interval asked of clients (default 30)
  --log-level LEVEL      debug, info, warn or error (default info)
  --log-format FORMAT    json or pretty (default: pretty on a terminal)
`;

/** mtt server */
export async function runServer(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    'host-key': { type: 'string' },
    'allowed-keys': { type: 'string' },
    'allow-ports': { type: 'string' },
    'public-host': { type: 'string' },
    metrics: { type: 'string' },
    heartbeat: { type: 'string' },
    ...LOG_OPTIONS,
  });
  if (values.help) {
    process.stdout.write(SERVER_HELP);
    return 0;
  }
  const log = makeLogger(values);
  const port = Number(values.port ?? 9000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`--port must be a port number from 0 to 65535, not "${values.port}"`, '--port');
  }
  let allowPorts: PortRange[] | undefined;
  try {
    allowPorts =
      values['allow-ports'] !== undefined ? parsePortRanges(values['allow-ports'] as string) : undefined;
  } catch (err) {
    throw new ConfigError(`--allow-ports: ${(err as Error).message}`, '--allow-ports');
  }
  const metrics =
    values.metrics !== undefined ? splitHostPortFlag(values.metrics as string, '--metrics') : undefined;
  const hostKeyPath = resolve((values['host-key'] as string | undefined) ?? defaultPaths.hostKey());
  const allowedKeysPath = resolve(
    (values['allowed-keys'] as string | undefined) ?? defaultPaths.allowedKeys(),
  );
  const { identity, created } = await loadOrCreateHostKey(hostKeyPath);
  if (created) log.info('created a new host key', { path: hostKeyPath });
  const heartbeatMs = seconds(values.heartbeat, '--heartbeat');
  const server = await startServer({
    host: (values.host as string | undefined) ?? '0.0.0.0',
    port,
    identity,
    allowedKeysPath,
    ...(allowPorts ? { allowPorts } : {}),
    publicHost: (values['public-host'] as string | undefined) ?? '0.0.0.0',
    ...(metrics ? { metrics } : {}),
    ...(heartbeatMs ? { heartbeatMs } : {}),
    log,
    signal,
  });
  const line = formatPublicKeyLine(identity.publicRaw, identity.comment);
  process.stdout.write(
    `mtt server listening on ${server.address.address}:${server.address.port}\n` +
      `  server key:  ${line}\n` +
      `  fingerprint: ${fingerprint(identity.publicRaw)}\n` +
      `  allow-list:  ${allowedKeysPath}\n` +
      (server.metricsAddress
        ? `  metrics:     http://${server.metricsAddress.address}:${server.metricsAddress.port}/metrics\n`
        : '') +
      `Put the server key line in the client config as "serverKey" to pin it.\n`,
  );
  if (!signal.aborted) await once(signal, 'abort');
  log.info('shutting down');
  await server.close();
  return 0;
}

function splitHostPortFlag(v: string, flag: string): { host: string; port: number } {
  try {
    return splitHostPort(v);
  } catch {
    throw new ConfigError(`${flag} must be ADDR:PORT, e.g. 127.0.0.1:9100, not "${v}"`, flag);
  }
}

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
