/**
 * The client's config file: its schema (zod, also exported as JSON Schema for editors), loading with
 * errors that name each wrong field and its fix, and atomic saving.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic-write.js';
import { ConfigError } from './config-error.js';

export { splitHostPort } from './host-port.js';

const port = (what: string) =>
  z
    .number({ error: `${what} must be a number from 1 to 65535` })
    .int({ error: `${what} must be a whole number from 1 to 65535` })
    .min(1, { error: `${what} must be from 1 to 65535` })
    .max(65535, { error: `${what} must be from 1 to 65535` });

/** One tunnel: a public port on the server forwarded to host:port in the client's network. */
export const tunnelSchema = z
  .strictObject({
    name: z
      .string({ error: 'name must be a string' })
      .regex(/^[A-Za-z0-9._-]{1,64}$/, {
        error: 'name must be 1-64 letters, digits, dots, dashes or underscores',
      })
      .describe('Unique name of the tunnel.'),
    remotePort: port('remotePort').describe('Port to open on the server.'),
    localHost: z
      .string({ error: 'localHost must be a host name or address' })
      .min(1, { error: 'localHost must not be empty' })
      .max(253, { error: 'localHost is too long' })
      .regex(/^[A-Za-z0-9.:_%[\]-]+$/, { error: 'localHost must be a host name or IP address' })
      .default('127.0.0.1')
      .describe('Host of the local service.'),
    localPort: port('localPort').describe('Port of the local service.'),
    enabled: z
      .boolean({ error: 'enabled must be true or false' })
      .default(true)
      .describe('Open this tunnel.'),
  })
  .describe('A public port on the server forwarded to a service in the client network.');

const hostPort = z
  .string({ error: 'server must be "host:port"' })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, {
    error: 'server must be "host:port", e.g. "vps.example.com:9000" or "[2001:db8::1]:9000"',
  });

/** The whole client config file. */
export const clientConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    server: hostPort.describe('The server\'s control address, "host:port".'),
    serverKey: z
      .string({ error: 'serverKey must be a string' })
      .regex(/^(ssh-ed25519 [A-Za-z0-9+/=]+( .*)?|SHA256:[A-Za-z0-9+/]{43})$/, {
        error:
          'serverKey must be the server\'s public key line ("ssh-ed25519 AAAA…") or its fingerprint ("SHA256:…")',
      })
      .optional()
      .describe(
        'Pins the server key. Without it the key is trusted on first use and recorded in knownServers.',
      ),
    identity: z
      .string({ error: 'identity must be a file path' })
      .min(1)
      .optional()
      .describe('Private key file (made with `mtt keygen`). Default: id_ed25519 in the mtt config folder.'),
    knownServers: z
      .string({ error: 'knownServers must be a file path' })
      .min(1)
      .optional()
      .describe('Trust-on-first-use record of server keys. Default: known_servers in the mtt config folder.'),
    heartbeatSeconds: z
      .number({ error: 'heartbeatSeconds must be a number' })
      .min(0.05, { error: 'heartbeatSeconds must be at least 0.05' })
      .max(3600, { error: 'heartbeatSeconds must be at most 3600' })
      .default(30)
      .describe('Seconds between heartbeats on the control channel.'),
    heartbeatTimeoutSeconds: z
      .number({ error: 'heartbeatTimeoutSeconds must be a number' })
      .min(0.05, { error: 'heartbeatTimeoutSeconds must be at least 0.05' })
      .max(3600, { error: 'heartbeatTimeoutSeconds must be at most 3600' })
      .default(10)
      .describe('A heartbeat not answered within this many seconds means the server is gone.'),
    reconnectMaxSeconds: z
      .number({ error: 'reconnectMaxSeconds must be a number' })
      .min(0.1, { error: 'reconnectMaxSeconds must be at least 0.1' })
      .max(3600, { error: 'reconnectMaxSeconds must be at most 3600' })
      .default(30)
      .describe('Longest wait between reconnect attempts (exponential backoff with jitter up to this).'),
    dataChannelPool: z
      .number({ error: 'dataChannelPool must be a number' })
      .int({ error: 'dataChannelPool must be a whole number' })
      .min(0, { error: 'dataChannelPool must be from 0 to 64' })
      .max(64, { error: 'dataChannelPool must be from 0 to 64' })
      .default(4)
      .describe('Data channels kept open ahead of need, so a new connection waits for no handshake.'),
    tunnels: z.array(tunnelSchema, { error: 'tunnels must be a list' }).default([]).describe('The tunnels.'),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    const ports = new Set<number>();
    cfg.tunnels.forEach((t, i) => {
      if (names.has(t.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tunnels', i, 'name'],
          message: `name "${t.name}" is used twice`,
        });
      }
      if (ports.has(t.remotePort)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tunnels', i, 'remotePort'],
          message: `remotePort ${t.remotePort} is used by two tunnels`,
        });
      }
      names.add(t.name);
      ports.add(t.remotePort);
    });
  });

/** A parsed config, defaults filled in. */
export type ClientConfig = z.output<typeof clientConfigSchema>;
/** One tunnel of a parsed config. */
export type TunnelEntry = z.output<typeof tunnelSchema>;

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** Turns zod issues into one line per wrong field. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const at = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return `${at ? `${at}: ` : ''}unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove ${issue.keys.length > 1 ? 'them' : 'it'} (see schema/client-config.schema.json)`;
    }
    const msg = issue.message.startsWith('Invalid input')
      ? `${issue.message.replace('Invalid input: ', '')}`
      : issue.message;
    return at ? `${at}: ${msg}` : msg;
  });
}

/** Validates one tunnel (GUI, TunnelManager); throws ConfigError naming the field. */
export function parseTunnel(input: unknown): TunnelEntry {
  const r = tunnelSchema.safeParse(input);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new ConfigError(describeIssues([first])[0]!, formatPath(first.path));
  }
  return r.data;
}

/** Validates a whole config object; throws ConfigError listing every wrong field. */
export function parseClientConfig(input: unknown, source = 'config'): ClientConfig {
  const r = clientConfigSchema.safeParse(input);
  if (!r.success) {
    const lines = describeIssues(r.error.issues);
    const first = r.error.issues[0];
    throw new ConfigError(
      `${source} is not valid:\n${lines.map((l) => `  - ${l}`).join('\n')}`,
      first ? formatPath(first.path) : undefined,
    );
  }
  return r.data;
}

/** A config read from a file: relative paths resolved against the file's folder. */
export interface LoadedClientConfig {
  path: string;
  config: ClientConfig;
  /** `identity` resolved (undefined: use the default). */
  identityPath: string | undefined;
  knownServersPath: string | undefined;
}

/** Reads and validates a config file. Every problem is a ConfigError naming the file and field. */
export async function loadClientConfig(path: string): Promise<LoadedClientConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `config file ${abs} does not exist; create it (see the README, "Config reference")`
        : `cannot read config file ${abs}: ${code ?? (err as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${abs} is not valid JSON: ${(err as Error).message}`);
  }
  const config = parseClientConfig(json, abs);
  const dir = dirname(abs);
  return {
    path: abs,
    config,
    identityPath: config.identity ? resolve(dir, config.identity) : undefined,
    knownServersPath: config.knownServers ? resolve(dir, config.knownServers) : undefined,
  };
}

/** Writes a config atomically (temp file, fsync, rename), so a crash never leaves half a file. */
export async function saveClientConfig(path: string, config: ClientConfig): Promise<void> {
  parseClientConfig(config, path);
  await writeFileAtomic(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}
