/**
 * Reading a JSON config file, for the client's config, the server's and `mtt check` alike: one read
 * and one parse, with errors (ConfigError on --config) that name the file and say what to do.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from './config-error.js';

/** A config file as read: its absolute path, its text and its JSON. */
export interface ConfigFile {
  path: string;
  text: string;
  json: unknown;
}

/**
 * Reads and parses the config file at `path` (resolved against the working folder). `missingFix`
 * ends the error for a file that does not exist: what the user can do instead.
 */
export async function readConfigFile(path: string, missingFix: string): Promise<ConfigFile> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw readError(abs, err as NodeJS.ErrnoException, missingFix);
  }
  return { path: abs, text, json: parseConfigJson(abs, text) };
}

/** Parses a config file's text (already read from `path`); ConfigError naming the file if not JSON. */
export function parseConfigJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`, '--config');
  }
}

function readError(abs: string, err: NodeJS.ErrnoException, missingFix: string): ConfigError {
  const code = err.code;
  const message =
    code === 'ENOENT'
      ? `config file ${abs} does not exist; ${missingFix}`
      : code === 'EISDIR'
        ? `config file ${abs} is a folder; pass the path of the JSON file`
        : code === 'EACCES' || code === 'EPERM'
          ? `cannot read config file ${abs}: permission denied (${code}); make it readable by the user mtt runs as`
          : `cannot read config file ${abs}: ${code ?? err.message}`;
  return new ConfigError(message, '--config');
}
