/**
 * `mtt check --config FILE`: validates a client or a server config, and the key and allow-list files
 * it names, without starting anything or writing a file. Exit 0 when `mtt client` / `mtt server`
 * would start with it, 2 (with every problem named) when not.
 */
import { existsSync } from 'node:fs';
import { parseClientConfigText } from '../config/client-config-file.js';
import { ConfigError } from '../config/config-error.js';
import { readConfigFile } from '../config/config-file.js';
import { defaultPaths } from '../config/paths.js';
import { loadServerConfig, SERVER_FLAGS } from '../config/server-config.js';
import { fingerprint, loadAllowList, loadIdentity } from '../identity/index.js';
import { escapeControls } from '../util/escape.js';
import { makeLogging } from './logging.js';
import { parseCommand } from './parse-command.js';
import { UsageError } from './usage-error.js';

const CHECK_HELP = `Usage: mtt check --config FILE [--kind client|server]

Checks a config file without starting anything: every field, and the key files and allow-list it
names (a missing default key is fine: it is created on first start). Whether FILE is a client or a
server config is seen from its fields ("server" and "tunnels" are the client's); --kind says it.

  --config FILE         the config to check
  --kind client|server  which kind FILE is
`;

type Kind = 'client' | 'server';

/** Which kind of config a parsed JSON object is, from its fields (undefined when it cannot be told). */
export function configKind(json: unknown): Kind | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const schema = typeof o.$schema === 'string' ? o.$schema : '';
  if (schema.includes('client-config')) return 'client';
  if (schema.includes('server-config')) return 'server';
  if ('server' in o || 'tunnels' in o) return 'client';
  if (Object.keys(SERVER_FLAGS).some((k) => k in o)) return 'server';
  return undefined;
}

/** mtt check */
export async function runCheck(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { config: { type: 'string', short: 'c' }, kind: { type: 'string' } });
  if (values.help) {
    process.stdout.write(CHECK_HELP);
    return 0;
  }
  makeLogging(values);
  if (values.config === undefined)
    throw new ConfigError('--config FILE is required (mtt check --help)', '--config');
  const kindFlag = values.kind as string | undefined;
  if (kindFlag !== undefined && kindFlag !== 'client' && kindFlag !== 'server') {
    throw new ConfigError(`--kind must be client or server, not "${kindFlag}"`, '--kind');
  }
  const { path, text, json } = await readConfigFile(
    values.config as string,
    'pass the path of a client or a server config (mtt check --help)',
  );
  const kind = (kindFlag as Kind | undefined) ?? configKind(json);
  if (kind === undefined) {
    throw new UsageError(
      `cannot tell whether ${path} is a client or a server config (a client config has "server" and "tunnels"); pass --kind client or --kind server`,
    );
  }
  const lines = kind === 'client' ? await checkClient(path, text) : await checkServer(path);
  process.stdout.write(`${lines.map((l) => escapeControls(l)).join('\n')}\n`);
  return 0;
}

async function checkClient(path: string, text: string): Promise<string[]> {
  const loaded = parseClientConfigText(path, text);
  const cfg = loaded.config;
  const out = [
    `${path}: a valid client config for ${cfg.server}, ${cfg.tunnels.length} tunnel${cfg.tunnels.length === 1 ? '' : 's'}`,
  ];
  for (const t of cfg.tunnels) {
    const host = t.localHost.includes(':') && !t.localHost.startsWith('[') ? `[${t.localHost}]` : t.localHost;
    out.push(
      `  ${t.name}: server port ${t.remotePort} -> ${host}:${t.localPort}${t.enabled ? '' : ' (disabled)'}`,
    );
  }
  // An explicit identity must exist; the default one is created on first run.
  const identityPath = loaded.identityPath ?? defaultPaths.identity();
  if (loaded.identityPath !== undefined || existsSync(identityPath)) {
    const identity = await loadIdentity(identityPath);
    out.push(`  identity: ${identityPath} (${fingerprint(identity.publicRaw)})`);
  } else {
    out.push(`  identity: ${identityPath} does not exist yet; mtt client creates it on first run`);
  }
  out.push(
    cfg.serverKey ? '  server key: pinned' : '  server key: trusted on first use (set serverKey to pin it)',
  );
  return out;
}

async function checkServer(path: string): Promise<string[]> {
  const loaded = await loadServerConfig(path);
  const cfg = loaded.config;
  const out = [
    `${path}: a valid server config: control ${cfg.host}:${cfg.port}, public ports ${cfg.allowPorts} on ${cfg.publicHost}` +
      (cfg.metrics ? `, metrics on ${cfg.metrics}` : ''),
  ];
  const hostKeyPath = loaded.hostKeyPath ?? defaultPaths.hostKey();
  if (existsSync(hostKeyPath)) {
    const identity = await loadIdentity(hostKeyPath);
    out.push(`  host key: ${hostKeyPath} (${fingerprint(identity.publicRaw)})`);
  } else {
    out.push(`  host key: ${hostKeyPath} does not exist yet; mtt server creates it on first start`);
  }
  const allowedKeysPath = loaded.allowedKeysPath ?? defaultPaths.allowedKeys();
  const list = await loadAllowList(allowedKeysPath);
  out.push(
    list.exists
      ? `  allow-list: ${allowedKeysPath}, ${list.entries.length} key${list.entries.length === 1 ? '' : 's'}`
      : `  allow-list: ${allowedKeysPath} does not exist yet; no client can connect until mtt allow adds one`,
  );
  return out;
}
