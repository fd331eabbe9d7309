/**
 * The server's settings: `mtt server --config FILE` (JSON) and the command-line flags are one schema
 * (zod, also written as JSON Schema to schema/server-config.schema.json for editors), so a file and
 * a flag are checked by the same rules and every wrong field is named at once, before anything
 * starts. Flags override the file; relative paths in a file are resolved from the file's folder.
 *
 * `node dist/src/config/server-config.js --write` refreshes the JSON Schema; a test checks the
 * committed file is current.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parsePortRanges } from '../identity/port-range.js';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/limits.js';
import { ConfigError, type FieldIssue } from './config-error.js';
import { readConfigFile } from './config-file.js';
import { hostProblem, splitHostPort, unbracket } from './host-port.js';
import { configJsonSchemaText, writeSchemaWhenRun } from './json-schema.js';

/** Defaults of the server's settings. */
export const SERVER_DEFAULTS = {
  port: 9000,
  host: '0.0.0.0',
  allowPorts: '1024-65535',
  publicHost: '0.0.0.0',
  heartbeatSeconds: HEARTBEAT_INTERVAL_MS / 1000,
  logLevel: 'info',
} as const;

/** Each field's command-line flag: errors about a value that came from a flag name the flag. */
export const SERVER_FLAGS = {
  port: '--port',
  host: '--host',
  hostKey: '--host-key',
  allowedKeys: '--allowed-keys',
  allowPorts: '--allow-ports',
  publicHost: '--public-host',
  metrics: '--metrics',
  adminSocket: '--admin-socket',
  heartbeatSeconds: '--heartbeat',
  logLevel: '--log-level',
  logFormat: '--log-format',
} as const;

/** A field of the server config. */
export type ServerField = keyof typeof SERVER_FLAGS;

const not = (iss: { input?: unknown }) =>
  iss.input === undefined ? '' : `, not ${JSON.stringify(iss.input)}`;

const portError = (iss: { input?: unknown }) => `must be a port number from 0 to 65535${not(iss)}`;

/** An optional file path (resolved later against the file's folder or the working folder). */
const filePath = () =>
  z.string({ error: 'must be a file path' }).min(1, { error: 'must be a file path, not empty' }).optional();

const listenHost = (what: string) =>
  z
    .string({ error: (iss) => `must be an address to listen on (${what})${not(iss)}` })
    .superRefine((h, ctx) => {
      const problem = hostProblem(h, 'the address');
      if (problem) ctx.addIssue({ code: 'custom', message: `must be an address to listen on: ${problem}` });
    });

/** The server config (file fields; the flags map onto the same names). */
export const serverConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    port: z
      .number({ error: portError })
      .int({ error: portError })
      .min(0, { error: portError })
      .max(65535, { error: portError })
      .default(SERVER_DEFAULTS.port)
      .describe('Control port: clients connect here (control and data channels). 0 picks a free port.'),
    host: listenHost('e.g. 0.0.0.0, :: or 127.0.0.1')
      .default(SERVER_DEFAULTS.host)
      .describe('Address the control port listens on.'),
    hostKey: filePath().describe(
      'The server identity key, created on first start. Default: host_key in the mtt config folder.',
    ),
    allowedKeys: filePath().describe(
      'Client allow-list (authorized_keys style), applied live. Default: allowed_keys in the mtt config folder.',
    ),
    allowPorts: z
      .string({ error: (iss) => `must be a port list such as "10000-10100,2222"${not(iss)}` })
      .superRefine((v, ctx) => {
        try {
          parsePortRanges(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `is not a port list: ${(err as Error).message}` });
        }
      })
      .default(SERVER_DEFAULTS.allowPorts)
      .describe('Public ports clients may open, e.g. "10000-10100,2222".'),
    publicHost: listenHost('e.g. 0.0.0.0')
      .default(SERVER_DEFAULTS.publicHost)
      .describe('Address the public (tunnel) ports listen on.'),
    metrics: z
      .string({ error: (iss) => `must be ADDR:PORT, e.g. 127.0.0.1:9100${not(iss)}` })
      .superRefine((v, ctx) => {
        let problem: string | undefined;
        try {
          problem = hostProblem(splitHostPort(v).host, 'the address');
        } catch {
          problem = '';
        }
        if (problem !== undefined) {
          const why = problem === '' ? '' : ` (${problem})`;
          ctx.addIssue({
            code: 'custom',
            message: `must be ADDR:PORT, e.g. 127.0.0.1:9100, not "${v}"${why}`,
          });
        }
      })
      .optional()
      .describe('Serve Prometheus text on http://ADDR:PORT/metrics, e.g. "127.0.0.1:9100".'),
    adminSocket: z
      .string({ error: (iss) => `must be a file path, or "off"${not(iss)}` })
      .min(1, { error: 'must be a file path, or "off", not empty' })
      .optional()
      .describe(
        'The Unix socket (mode 0600) mtt status reads, or "off". Default: admin.sock in the mtt config folder.',
      ),
    heartbeatSeconds: z
      .number({ error: (iss) => `must be a positive number of seconds${not(iss)}` })
      .positive({ error: (iss) => `must be a positive number of seconds${not(iss)}` })
      .max(3600, { error: 'must be at most 3600 seconds' })
      .default(SERVER_DEFAULTS.heartbeatSeconds)
      .describe('Heartbeat interval asked of clients; silence for three of them drops the session.'),
    logLevel: z
      .enum(['debug', 'info', 'warn', 'error'], {
        error: (iss) => `must be debug, info, warn or error${not(iss)}`,
      })
      .default(SERVER_DEFAULTS.logLevel)
      .describe('Least important log level written.'),
    logFormat: z
      .enum(['json', 'pretty'], { error: (iss) => `must be json or pretty${not(iss)}` })
      .optional()
      .describe('Log format; by default human lines on a terminal, JSON lines otherwise.'),
  })
  .describe('mtt server settings (mtt server --config FILE); every field has a command-line flag.');

/** The server config as written (defaults absent). */
export type ServerConfigInput = z.input<typeof serverConfigSchema>;
/** A parsed server config, defaults filled in; paths not yet resolved. */
export type ServerConfig = z.output<typeof serverConfigSchema>;

/** A server config with its file paths resolved. */
export interface LoadedServerConfig {
  config: ServerConfig;
  /** The config file, when one was given. */
  path: string | undefined;
  /** `hostKey` resolved (undefined: use the default). */
  hostKeyPath: string | undefined;
  /** `allowedKeys` resolved (undefined: use the default). */
  allowedKeysPath: string | undefined;
  /** `adminSocket` resolved (undefined: use the default; false: "off"). */
  adminSocketPath: string | false | undefined;
}

function issuesOf(error: z.ZodError, fromFlag: ReadonlySet<string>): FieldIssue[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const many = issue.keys.length > 1;
      return {
        field: '',
        message: `unknown field${many ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove ${many ? 'them' : 'it'} (see schema/server-config.schema.json)`,
      };
    }
    const field = String(issue.path[0] ?? '');
    const label = fromFlag.has(field) ? SERVER_FLAGS[field as ServerField] : field;
    return { field: label, message: `${label} ${issue.message.replace(/^Invalid input: /, '')}` };
  });
}

/**
 * Validates settings: `file` (a parsed config file, or undefined) overridden by `flags` (values
 * from the command line, already converted to numbers where the field is one). Throws a ConfigError
 * naming every wrong field (by its flag when the value came from one).
 */
export function parseServerConfig(
  file: unknown,
  flags: Partial<Record<ServerField, unknown>> = {},
  source?: string,
): ServerConfig {
  if (file !== undefined && (typeof file !== 'object' || file === null || Array.isArray(file))) {
    throw new ConfigError(
      `${source ?? 'the server config'} must hold a JSON object ({ "port": 9000, … })`,
      '--config',
    );
  }
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const r = serverConfigSchema.safeParse({ ...(file as object | undefined), ...given });
  if (r.success) return r.data;
  const issues = issuesOf(r.error, new Set(Object.keys(given)));
  if (issues.length === 1 && source === undefined)
    throw new ConfigError(issues[0]!.message, issues[0]!.field, issues);
  throw new ConfigError(
    `${source ? `${source} is not valid` : 'the server settings are not valid'}:\n${issues.map((i) => `  - ${i.message}`).join('\n')}`,
    issues[0]?.field ?? '',
    issues,
  );
}

/** What to do about a server config file that does not exist (the end of its error). */
const SERVER_CONFIG_MISSING_FIX = 'create it (see the README, "mtt server") or leave out --config';

/** Loads `--config FILE` (if given) under the flags and resolves its paths. */
export async function loadServerConfig(
  path: string | undefined,
  flags: Partial<Record<ServerField, unknown>> = {},
): Promise<LoadedServerConfig> {
  const file = path === undefined ? undefined : await readConfigFile(path, SERVER_CONFIG_MISSING_FIX);
  const config = parseServerConfig(file?.json, flags, file?.path);
  // A path from the file is relative to the file; one from a flag is relative to the working folder.
  const base = (field: ServerField) =>
    flags[field] === undefined && file ? dirname(file.path) : process.cwd();
  return {
    config,
    path: file?.path,
    hostKeyPath: config.hostKey === undefined ? undefined : resolve(base('hostKey'), config.hostKey),
    allowedKeysPath:
      config.allowedKeys === undefined ? undefined : resolve(base('allowedKeys'), config.allowedKeys),
    adminSocketPath:
      config.adminSocket === undefined
        ? undefined
        : config.adminSocket === 'off'
          ? false
          : resolve(base('adminSocket'), config.adminSocket),
  };
}

/** The host part of a listen address as net.listen() wants it ("[::]" -> "::"). */
export function listenAddress(host: string): string {
  return unbracket(host);
}

/** The JSON Schema text of the server config, as committed in schema/. */
export function serverConfigJsonSchema(): string {
  return configJsonSchemaText(serverConfigSchema, 'server');
}

writeSchemaWhenRun(import.meta.url, 'server', serverConfigJsonSchema);
