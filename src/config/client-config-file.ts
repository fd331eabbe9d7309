/**
 * Reading and writing the client config file: errors that name the file and each wrong field, paths
 * resolved against the file's folder, and atomic writes.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { type ClientConfig, parseClientConfig } from './client-config.js';
import { ConfigError } from './config-error.js';

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
        ? `config file ${abs} does not exist; create it (see the README, "Config reference") or run mtt gui to set one up`
        : `cannot read config file ${abs}: ${code ?? (err as Error).message}`,
      '--config',
    );
  }
  return parseClientConfigText(abs, text);
}

/** Validates a config file's text (read by the caller). */
export function parseClientConfigText(abs: string, text: string): LoadedClientConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${abs} is not valid JSON: ${(err as Error).message}`, '--config');
  }
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
