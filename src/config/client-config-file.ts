/**
 * Reading and writing the client config file: errors that name the file and each wrong field, paths
 * resolved against the file's folder, and atomic writes.
 */
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { type ClientConfig, parseClientConfig } from './client-config.js';
import { parseConfigJson, readConfigFile } from './config-file.js';

/** A config read from a file: relative paths resolved against the file's folder. */
export interface LoadedClientConfig {
  path: string;
  config: ClientConfig;
  /** The file's parsed JSON as written (defaults absent), so a save can keep what the user wrote. */
  raw: Record<string, unknown>;
  /** The file's text as read; a save refuses to overwrite a file whose text changed since. */
  text: string;
  /** `identity` resolved (undefined: use the default). */
  identityPath: string | undefined;
  knownServersPath: string | undefined;
}

/** What to do about a client config file that does not exist (the end of its error). */
export const CLIENT_CONFIG_MISSING_FIX =
  'create it (see the README, "Config reference") or run mtt gui to set one up';

/** Reads and validates a config file. Every problem is a ConfigError naming the file and field. */
export async function loadClientConfig(path: string): Promise<LoadedClientConfig> {
  const file = await readConfigFile(path, CLIENT_CONFIG_MISSING_FIX);
  return clientConfigOf(file.path, file.text, file.json);
}

/** Validates a config file's text (read by the caller). */
export function parseClientConfigText(abs: string, text: string): LoadedClientConfig {
  return clientConfigOf(abs, text, parseConfigJson(abs, text));
}

function clientConfigOf(abs: string, text: string, json: unknown): LoadedClientConfig {
  const config = parseClientConfig(json, abs);
  const dir = dirname(abs);
  return {
    path: abs,
    config,
    raw: json as Record<string, unknown>,
    text,
    identityPath: config.identity ? resolve(dir, config.identity) : undefined,
    knownServersPath: config.knownServers ? resolve(dir, config.knownServers) : undefined,
  };
}

/** Writes a whole new config atomically (temp file, fsync, rename), so a crash never leaves half a file. */
export async function saveClientConfig(path: string, config: unknown, mode = 0o600): Promise<void> {
  parseClientConfig(config, path);
  await writeFileAtomic(path, JSON.stringify(config, null, 2) + '\n', { mode });
}
