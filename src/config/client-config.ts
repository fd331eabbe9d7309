/**
 * The client's config: the one definition of a tunnel and of the config file (zod), the types derived
 * from it, the defaults, and errors that name each wrong field as a user knows it and say the fix.
 *
 * Pure (zod and our own pure helpers only, no Node APIs): the dashboard's web build imports this very
 * file so its form checks exactly what the client checks. Reading and writing the file is in
 * client-config-file.ts; the JSON Schema in schema/ is generated from these schemas (json-schema.ts).
 */
import { z } from 'zod';
import { MAX_PERMIT_FROM, MAX_TUNNEL_NAME_LEN } from '../protocol/limits.js';
import { ConfigError, type FieldIssue } from './config-error.js';
import { hostProblem, parseCidr, splitHostPort, unbracket } from './host-port.js';
import { rateProblem } from './rate.js';

export { formatHostPort, splitHostPort } from './host-port.js';
export { parseRate } from './rate.js';

/** Defaults of the optional tunnel fields; an absent proxyProtocol, permitFrom, … means "off". */
export const TUNNEL_DEFAULTS = { localHost: '127.0.0.1', enabled: true, compress: true } as const;

/** Defaults of the client settings. */
export const CLIENT_DEFAULTS = {
  heartbeatSeconds: 30,
  heartbeatTimeoutSeconds: 10,
  reconnectMaxSeconds: 30,
  dataChannelPool: 4,
} as const;

/** Largest maxConnections (u32 on the wire). */
export const MAX_CONNECTIONS_LIMIT = 0xffff_ffff;

/** How a user knows each field: the dashboard's labels, and the words in every error message. */
export const FIELD_LABELS = {
  name: 'name',
  remotePort: 'public port',
  localHost: 'local host',
  localPort: 'local port',
  enabled: 'enabled',
  compress: 'compression',
  proxyProtocol: 'PROXY protocol',
  permitFrom: 'allowed visitors',
  maxConnections: 'connection limit',
  rateLimit: 'rate limit',
  server: 'server address',
  serverKey: 'server key',
  identity: 'identity key file',
  knownServers: 'known servers file',
  heartbeatSeconds: 'heartbeat interval',
  heartbeatTimeoutSeconds: 'heartbeat timeout',
  reconnectMaxSeconds: 'longest reconnect wait',
  dataChannelPool: 'data channel pool',
  metrics: 'metrics address',
  tunnels: 'tunnels',
} as const;

const missing = (iss: { input: unknown }) => iss.input === undefined;

const port = (label: string) =>
  z
    .number({
      error: (iss) => (missing(iss) ? `${label} is required` : `${label} must be a number from 1 to 65535`),
    })
    .int({ error: `${label} must be a whole number from 1 to 65535` })
    .min(1, { error: `${label} must be from 1 to 65535` })
    .max(65535, { error: `${label} must be from 1 to 65535` });

const hostField = z
  .string({
    error: (iss) =>
      missing(iss) ? 'local host is required' : 'local host must be a host name or IP address',
  })
  .trim()
  // A coarse pattern for editors (the JSON Schema); the exact rules are in hostProblem().
  .regex(/^[A-Za-z0-9.:_%[\]-]{1,255}$/, {
    error: 'local host must be a host name or IP address (e.g. 127.0.0.1, db.lan or ::1)',
    abort: true,
  })
  .superRefine((host, ctx) => {
    const problem = hostProblem(host, 'local host');
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  // Stored bare, so it can be dialled as it is; brackets are how it is shown beside a port.
  .overwrite(unbracket);

/** One tunnel: a public port on the server forwarded to host:port in the client's network. */
export const tunnelSchema = z
  .strictObject({
    name: z
      .string({ error: (iss) => (missing(iss) ? 'name is required' : 'name must be text') })
      .min(1, { error: 'name is required', abort: true })
      .regex(new RegExp(`^[A-Za-z0-9._-]{1,${MAX_TUNNEL_NAME_LEN}}$`), {
        error: `name must be 1-${MAX_TUNNEL_NAME_LEN} letters, digits, dots, dashes or underscores`,
      })
      .describe('Unique name of the tunnel.'),
    remotePort: port(FIELD_LABELS.remotePort).describe('Port to open on the server (the public port).'),
    localHost: hostField
      .default(TUNNEL_DEFAULTS.localHost)
      .describe('Host of the local service: a host name, an IPv4 address or an IPv6 address.'),
    localPort: port(FIELD_LABELS.localPort).describe('Port of the local service.'),
    enabled: z
      .boolean({ error: 'enabled must be true or false' })
      .default(TUNNEL_DEFAULTS.enabled)
      .describe('Open this tunnel.'),
    compress: z
      .union([z.boolean(), z.literal('zstd')], {
        error: 'compression must be true (LZ4), false (off) or "zstd"',
      })
      .default(TUNNEL_DEFAULTS.compress)
      .describe(
        'Compress this tunnel\'s traffic while its link is the bottleneck: true = LZ4; "zstd" = zstd (stronger, for slow links; needs Node.js 22.15 on both ends, else LZ4 is used); false = off. Turn it off when secrets and visitor-chosen bytes share a connection (see "Compression" in the README).',
      ),
    proxyProtocol: z
      .enum(['v1', 'v2'], { error: 'PROXY protocol must be "v1" or "v2" (leave it out for none)' })
      .optional()
      .describe(
        "Send the visitor's address to the local service with a PROXY protocol header (v1 text, v2 binary).",
      ),
    permitFrom: z
      .array(z.string({ error: 'allowed visitors must be addresses or CIDR blocks as text' }), {
        error: 'allowed visitors must be a list of addresses or CIDR blocks',
      })
      .min(1, {
        error: 'allowed visitors must list at least one address; leave the field out to allow anyone',
      })
      .max(MAX_PERMIT_FROM, { error: `allowed visitors can list at most ${MAX_PERMIT_FROM} blocks` })
      .superRefine((list, ctx) => {
        list.forEach((entry, i) => {
          const r = parseCidr(entry.trim());
          if (typeof r === 'string') {
            ctx.addIssue({ code: 'custom', path: [i], message: `allowed visitors: ${r}` });
          }
        });
      })
      .optional()
      .describe(
        'Visitor addresses allowed to connect (CIDR blocks such as "203.0.113.0/24" or "2001:db8::/32"). Absent: anyone the server allows.',
      ),
    maxConnections: z
      .number({ error: 'connection limit must be a number' })
      .int({ error: 'connection limit must be a whole number' })
      .min(1, { error: 'connection limit must be at least 1; leave it out for no limit' })
      .max(MAX_CONNECTIONS_LIMIT, { error: `connection limit must be at most ${MAX_CONNECTIONS_LIMIT}` })
      .optional()
      .describe('Most connections open at once through this tunnel. Absent: no limit.'),
    rateLimit: z
      .string({ error: 'rate limit must be text such as "10MB/s"' })
      .regex(/^\s*\d+(\.\d+)?\s*[A-Za-z]+\/s\s*$/, {
        error: 'rate limit must be a number and a unit per second, e.g. 10MB/s, 512KiB/s or 100Mbit/s',
        abort: true,
      })
      .superRefine((rate, ctx) => {
        const problem = rateProblem(rate);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe(
        'Most bytes per second each way through this tunnel, e.g. "10MB/s", "512KiB/s", "100Mbit/s". Absent: no limit.',
      ),
  })
  .describe('A public port on the server forwarded to a service in the client network.');

/** One tunnel as written in the config file or sent by the dashboard (optional fields may be absent). */
export type TunnelConfig = z.input<typeof tunnelSchema>;
/** One tunnel after validation: defaults filled in, localHost without brackets. */
export type TunnelEntry = z.output<typeof tunnelSchema>;
/** The name of a tunnel field. */
export type TunnelField = keyof TunnelEntry;
/** Every tunnel field, in the order the config and the form show them. */
export const TUNNEL_FIELDS = Object.keys(tunnelSchema.shape) as TunnelField[];

const seconds = (field: keyof typeof FIELD_LABELS, min: number, max: number) => {
  const label = FIELD_LABELS[field];
  return z
    .number({ error: `${label} must be a number of seconds` })
    .min(min, { error: `${label} must be at least ${min} seconds` })
    .max(max, { error: `${label} must be at most ${max} seconds` });
};

/** The whole client config file. */
export const clientConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    server: z
      .string({
        error: (iss) => (missing(iss) ? 'server address is required' : 'server address must be text'),
      })
      .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/, {
        error: 'server address must be "host:port", e.g. "vps.example.com:9000" or "[2001:db8::1]:9000"',
        abort: true,
      })
      .superRefine((server, ctx) => {
        const colon = server.lastIndexOf(':');
        const problem = hostProblem(server.slice(0, colon), 'server address');
        const p = Number(server.slice(colon + 1));
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
        else if (p < 1 || p > 65535)
          ctx.addIssue({ code: 'custom', message: 'server port must be from 1 to 65535' });
      })
      .describe('The server\'s control address, "host:port".'),
    serverKey: z
      .string({ error: 'server key must be text' })
      .regex(/^(ssh-ed25519 [A-Za-z0-9+/=]+( .*)?|SHA256:[A-Za-z0-9+/]{43})$/, {
        error:
          'server key must be the server\'s public key line ("ssh-ed25519 AAAA…") or its fingerprint ("SHA256:…")',
      })
      .optional()
      .describe(
        'Pins the server key. Without it the key is trusted on first use and recorded in knownServers.',
      ),
    identity: z
      .string({ error: 'identity key file must be a file path' })
      .min(1, { error: 'identity key file must not be empty' })
      .optional()
      .describe('Private key file (made with `mtt keygen`). Default: id_ed25519 in the mtt config folder.'),
    knownServers: z
      .string({ error: 'known servers file must be a file path' })
      .min(1, { error: 'known servers file must not be empty' })
      .optional()
      .describe('Trust-on-first-use record of server keys. Default: known_servers in the mtt config folder.'),
    heartbeatSeconds: seconds('heartbeatSeconds', 0.05, 3600)
      .default(CLIENT_DEFAULTS.heartbeatSeconds)
      .describe('Seconds between heartbeats on the control channel.'),
    heartbeatTimeoutSeconds: seconds('heartbeatTimeoutSeconds', 0.05, 3600)
      .default(CLIENT_DEFAULTS.heartbeatTimeoutSeconds)
      .describe('A heartbeat not answered within this many seconds means the server is gone.'),
    reconnectMaxSeconds: seconds('reconnectMaxSeconds', 0.1, 3600)
      .default(CLIENT_DEFAULTS.reconnectMaxSeconds)
      .describe('Longest wait between reconnect attempts (exponential backoff with jitter up to this).'),
    dataChannelPool: z
      .number({ error: 'data channel pool must be a number' })
      .int({ error: 'data channel pool must be a whole number' })
      .min(0, { error: 'data channel pool must be from 0 to 64' })
      .max(64, { error: 'data channel pool must be from 0 to 64' })
      .default(CLIENT_DEFAULTS.dataChannelPool)
      .describe('Data channels kept open ahead of need, so a new connection waits for no handshake.'),
    metrics: z
      .string({ error: 'metrics address must be "ADDR:PORT", e.g. "127.0.0.1:9101"' })
      .superRefine((v, ctx) => {
        let problem: string | undefined;
        try {
          problem = hostProblem(splitHostPort(v).host, 'metrics address');
        } catch {
          problem = '';
        }
        if (problem !== undefined)
          ctx.addIssue({
            code: 'custom',
            message: `metrics address must be "ADDR:PORT", e.g. "127.0.0.1:9101", not "${v}"${problem ? ` (${problem})` : ''}`,
          });
      })
      .optional()
      .describe(
        'Serve Prometheus text on http://ADDR:PORT/metrics (with /healthz and /readyz), e.g. "127.0.0.1:9101". Absent: no metrics listener.',
      ),
    tunnels: z.array(tunnelSchema, { error: 'tunnels must be a list' }).default([]).describe('The tunnels.'),
  })
  .superRefine((cfg, ctx) => {
    const names = new Map<string, number>();
    const ports = new Map<number, string>();
    cfg.tunnels.forEach((t, i) => {
      if (names.has(t.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tunnels', i, 'name'],
          message: `name "${t.name}" is used twice`,
        });
      }
      const other = ports.get(t.remotePort);
      if (other !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['tunnels', i, 'remotePort'],
          message: `public port ${t.remotePort} is already used by "${other}"`,
        });
      }
      names.set(t.name, i);
      if (other === undefined) ports.set(t.remotePort, t.name);
    });
  });

/** A config as written in the file (what a person typed; defaults absent). */
export type ClientConfigInput = z.input<typeof clientConfigSchema>;
/** A parsed config, defaults filled in. */
export type ClientConfig = z.output<typeof clientConfigSchema>;
/** The settings of a config: everything but the tunnels. */
export type ClientSettings = Omit<ClientConfig, 'tunnels' | '$schema'>;

/** "tunnels[0].remotePort" from a zod path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** Turns zod issues into field issues whose messages read as sentences for a user. */
export function fieldIssues(issues: readonly z.core.$ZodIssue[]): FieldIssue[] {
  return issues.map((issue) => {
    const field = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const many = issue.keys.length > 1;
      return {
        field,
        message: `unknown field${many ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove ${many ? 'them' : 'it'} (see schema/client-config.schema.json)`,
      };
    }
    return { field, message: issue.message.replace(/^Invalid input: /, '') };
  });
}

/** One line per wrong field: "tunnels[0].remotePort: public port must be from 1 to 65535". */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return fieldIssues(issues).map((i) => (i.field ? `${i.field}: ${i.message}` : i.message));
}

/**
 * Validates one tunnel (dashboard, TunnelManager). Throws a ConfigError whose `field` is the tunnel
 * field at fault ("remotePort") and whose `issues` list every wrong field.
 */
export function parseTunnel(input: unknown): TunnelEntry {
  const r = tunnelSchema.safeParse(input);
  if (r.success) return r.data;
  const issues = fieldIssues(r.error.issues).map((issue, i) => ({
    // The top-level tunnel field ("permitFrom", not "permitFrom[2]"): what a form highlights.
    field: String(r.error.issues[i]!.path[0] ?? ''),
    message: issue.message,
  }));
  throw new ConfigError(issues[0]!.message, issues[0]!.field, issues);
}

/** Every wrong field of a tunnel, by field; empty when it is valid. */
export function tunnelFieldErrors(input: unknown): Partial<Record<TunnelField, string>> {
  try {
    parseTunnel(input);
    return {};
  } catch (err) {
    const out: Partial<Record<TunnelField, string>> = {};
    for (const i of (err as ConfigError).issues) out[i.field as TunnelField] ??= i.message;
    return out;
  }
}

/** Validates a whole config object; throws a ConfigError listing every wrong field. */
export function parseClientConfig(input: unknown, source = 'config'): ClientConfig {
  const r = clientConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const issues = fieldIssues(r.error.issues);
  const lines = describeIssues(r.error.issues);
  throw new ConfigError(
    `${source} is not valid:\n${lines.map((l) => `  - ${l}`).join('\n')}`,
    issues[0]?.field ?? '',
    issues,
  );
}
