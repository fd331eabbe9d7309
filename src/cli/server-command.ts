/** `mtt server`: start a server, stop it on SIGINT/SIGTERM. */
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { splitHostPort } from '../config/host-port.js';
import { defaultPaths } from '../config/paths.js';
import {
  fingerprint,
  formatPublicKeyLine,
  loadOrCreateHostKey,
  type PortRange,
  PRIVATE_DIR_MODE,
  parsePortRanges,
} from '../identity/index.js';
import { startServer } from '../server/index.js';
import { makeLogging, seconds } from './logging.js';
import { checkLz4 } from './lz4-check.js';
import { parseCommand } from './parse-command.js';

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
  });
  if (values.help) {
    process.stdout.write(SERVER_HELP);
    return 0;
  }
  const logging = makeLogging(values);
  const { log } = logging;
  checkLz4(log);
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
  // The server watches the allow-list's folder for `mtt allow` edits, so that folder must exist.
  await mkdir(dirname(allowedKeysPath), { recursive: true, mode: PRIVATE_DIR_MODE });
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
  const fp = fingerprint(identity.publicRaw);
  const control = `${server.address.address}:${server.address.port}`;
  const metricsUrl = server.metricsAddress
    ? `http://${server.metricsAddress.address}:${server.metricsAddress.port}/metrics`
    : undefined;
  logging.banner(
    `mtt server listening on ${control}\n` +
      `  server key:  ${line}\n` +
      `  fingerprint: ${fp}\n` +
      `  allow-list:  ${allowedKeysPath}\n` +
      (metricsUrl ? `  metrics:     ${metricsUrl}\n` : '') +
      `Put the server key line in the client config as "serverKey" to pin it.\n`,
    'mtt server ready',
    { control, serverKey: line, fingerprint: fp, allowList: allowedKeysPath, metrics: metricsUrl },
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
