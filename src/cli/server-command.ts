/** `mtt server`: start a server from flags and/or a config file, stop it on SIGINT/SIGTERM. */
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { defaultPaths } from '../config/paths.js';
import { listenAddress, loadServerConfig, SERVER_DEFAULTS } from '../config/server-config.js';
import {
  fingerprint,
  formatPublicKeyLine,
  loadOrCreateHostKey,
  PRIVATE_DIR_MODE,
  parsePortRanges,
} from '../identity/index.js';
import { startServer } from '../server/index.js';
import { makeLogging } from './logging.js';
import { checkLz4 } from './lz4-check.js';
import { type FlagValues, parseCommand } from './parse-command.js';

const SERVER_HELP = `Usage: mtt server [--config FILE] [options]

Runs the public side: clients in the allow-list connect here and open public ports.
Every option is also a field of the JSON config file (schema/server-config.schema.json);
an option given on the command line wins over the file.

  --config FILE          settings from a JSON file (fields: port, host, hostKey, allowedKeys,
                         allowPorts, publicHost, metrics, adminSocket, heartbeatSeconds, logLevel,
                         logFormat)
  --port PORT            control port (default 9000)
  --host ADDR            control listen address (default 0.0.0.0)
  --host-key FILE        server identity; created on first start (default ${defaultPaths.hostKey()})
  --allowed-keys FILE    client allow-list, authorized_keys style, applied live (default ${defaultPaths.allowedKeys()})
  --allow-ports RANGES   public ports clients may open, e.g. 10000-10100,2222 (default 1024-65535)
  --public-host ADDR     address the public ports listen on (default 0.0.0.0)
  --metrics ADDR:PORT    serve Prometheus text on http://ADDR:PORT/metrics, and /healthz, /readyz
  --admin-socket PATH    the Unix socket (mode 0600) mtt status reads, or "off"
                         (default ${defaultPaths.adminSocket()})
  --heartbeat SECONDS    heartbeat interval asked of clients (default ${SERVER_DEFAULTS.heartbeatSeconds})
  --log-level LEVEL      debug, info, warn or error (default info)
  --log-format FORMAT    json or pretty (default: pretty on a terminal)
`;

/** The server's flags (each is a field of the server config). */
export const SERVER_FLAG_SPEC = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string' },
  host: { type: 'string' },
  'host-key': { type: 'string' },
  'allowed-keys': { type: 'string' },
  'allow-ports': { type: 'string' },
  'public-host': { type: 'string' },
  metrics: { type: 'string' },
  'admin-socket': { type: 'string' },
  heartbeat: { type: 'string' },
} as const;

/** A flag's text as the config field's type: numbers where the field is a number (else left for the schema to name). */
function numberish(v: unknown): unknown {
  return typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
}

/** The command-line values as server config fields. */
export function serverFlagFields(values: FlagValues) {
  return {
    port: numberish(values.port),
    host: values.host,
    hostKey: values['host-key'],
    allowedKeys: values['allowed-keys'],
    allowPorts: values['allow-ports'],
    publicHost: values['public-host'],
    metrics: values.metrics,
    adminSocket: values['admin-socket'],
    heartbeatSeconds: numberish(values.heartbeat),
    logLevel: values['log-level'],
    logFormat: values['log-format'],
  };
}

/** mtt server */
export async function runServer(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, SERVER_FLAG_SPEC);
  if (values.help) {
    process.stdout.write(SERVER_HELP);
    return 0;
  }
  // One schema checks flags and file alike, naming every wrong one, before anything starts.
  const loaded = await loadServerConfig(values.config as string | undefined, serverFlagFields(values));
  const cfg = loaded.config;
  const logging = makeLogging({ 'log-level': cfg.logLevel, 'log-format': cfg.logFormat });
  const { log } = logging;
  checkLz4(log);
  const hostKeyPath = loaded.hostKeyPath ?? defaultPaths.hostKey();
  const allowedKeysPath = loaded.allowedKeysPath ?? defaultPaths.allowedKeys();
  const { identity, created } = await loadOrCreateHostKey(hostKeyPath);
  // The server watches the allow-list's folder for \`mtt allow\` edits, so that folder must exist.
  await mkdir(dirname(allowedKeysPath), { recursive: true, mode: PRIVATE_DIR_MODE });
  if (created) log.info('created a new host key', { path: hostKeyPath });
  const metrics = cfg.metrics === undefined ? undefined : splitMetrics(cfg.metrics);
  // The default socket is best effort (a second server with the same config folder runs without
  // one, with a warning); one the admin asked for must open, or the server does not start.
  const adminSocket =
    loaded.adminSocketPath === false
      ? undefined
      : loaded.adminSocketPath === undefined
        ? { path: defaultPaths.adminSocket(), optional: true }
        : { path: loaded.adminSocketPath };
  const server = await startServer({
    host: listenAddress(cfg.host),
    port: cfg.port,
    identity,
    allowedKeysPath,
    allowPorts: parsePortRanges(cfg.allowPorts),
    publicHost: listenAddress(cfg.publicHost),
    ...(metrics ? { metrics } : {}),
    ...(adminSocket ? { adminSocket } : {}),
    heartbeatMs: cfg.heartbeatSeconds * 1000,
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
      (server.adminSocketPath ? `  status:      mtt status --socket ${server.adminSocketPath}\n` : '') +
      `Put the server key line in the client config as "serverKey" to pin it.\n`,
    'mtt server ready',
    {
      control,
      serverKey: line,
      fingerprint: fp,
      allowList: allowedKeysPath,
      metrics: metricsUrl,
      adminSocket: server.adminSocketPath,
    },
  );
  if (!signal.aborted) await once(signal, 'abort');
  log.info('shutting down');
  await server.close();
  return 0;
}

function splitMetrics(v: string): { host: string; port: number } {
  const colon = v.lastIndexOf(':');
  return { host: listenHost(v.slice(0, colon)), port: Number(v.slice(colon + 1)) };
}

function listenHost(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}
