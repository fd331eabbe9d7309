/**
 * Identity key files on disk: PATH (private, 0600) and PATH.pub (public, 0644), as ssh-keygen lays them out.
 */

import type { FileHandle } from 'node:fs/promises';
import { lstat, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Identity } from './identity.js';
import { generateIdentity } from './identity.js';
import { IdentityError } from './identity-error.js';
import { formatPrivateKeyFile, parsePrivateKeyFile } from './private-key-file.js';
import { formatPublicKeyLine } from './public-key.js';
import { shellQuote } from './shell-quote.js';

/** Mode of private key files. */
export const PRIVATE_KEY_MODE = 0o600;
/** Mode of folders created for key files (as ssh does for ~/.ssh). */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of .pub files. */
export const PUBLIC_KEY_MODE = 0o644;
// A real key file is well under 1 KiB; refuse to read anything huge into memory.
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** Options for writeIdentityFiles. */
export interface WriteIdentityOptions {
  /** Overwrite PATH and PATH.pub if they exist (the old key is lost). */
  force?: boolean;
}

/** Result of loadOrCreateHostKey. */
export interface HostKeyResult {
  /** The loaded or new identity. */
  identity: Identity;
  /** True when the key did not exist and was just created. */
  created: boolean;
}

/** Path of the public half next to a private key file. */
export function publicKeyPath(path: string): string {
  return `${path}.pub`;
}

/**
 * Write PATH (0600) and PATH.pub (0644) atomically, creating PATH's folder (0700) when it is missing;
 * throws ERR_KEY_EXISTS unless `force`.
 */
export async function writeIdentityFiles(
  path: string,
  identity: Identity,
  options: WriteIdentityOptions = {},
): Promise<void> {
  const pubPath = publicKeyPath(path);
  if (!options.force) {
    for (const target of [path, pubPath]) {
      if (await exists(target)) {
        throw new IdentityError(
          'ERR_KEY_EXISTS',
          `${target} already exists; pass --force to overwrite it (the old key will be lost)`,
        );
      }
    }
  }
  // A first run has no config folder yet (a fresh HOME, `-f` into a new folder).
  await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
  // Private half first: a crash in between leaves a usable key whose .pub can be recreated.
  await writeFileAtomic(path, formatPrivateKeyFile(identity), { mode: PRIVATE_KEY_MODE });
  await writeFileAtomic(pubPath, `${formatPublicKeyLine(identity.publicRaw, identity.comment)}\n`, {
    mode: PUBLIC_KEY_MODE,
  });
}

/** Read a private key file, refusing it when group or others can access it (POSIX only). */
export async function loadIdentity(path: string): Promise<Identity> {
  const quoted = shellQuote(path);
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new IdentityError(
        'ERR_KEY_MISSING',
        `private key ${path} does not exist; create it with: mtt keygen -f ${quoted}`,
        { cause: error },
      );
    }
    throw accessError(path, error);
  }
  try {
    // fstat the open handle, so the file checked is the file read.
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new IdentityError(
        'ERR_FILE_ACCESS',
        `private key ${path} is not a regular file; give the key file's path`,
      );
    }
    if (process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      throw new IdentityError(
        'ERR_KEY_PERMISSIONS',
        `private key ${path} is accessible by group or others (mode ${mode}); run: chmod 600 ${quoted}`,
      );
    }
    if (stats.size > MAX_KEY_FILE_BYTES) {
      throw new IdentityError(
        'ERR_KEY_FORMAT',
        `${path} is ${stats.size} bytes, too large for a private key; check the path`,
      );
    }
    const text = await handle.readFile({ encoding: 'utf8' });
    return parsePrivateKeyFile(text, path);
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    throw accessError(path, error);
  } finally {
    await handle.close();
  }
}

/** Load the server's host key, creating it (and its folder, 0700) on first start. */
export async function loadOrCreateHostKey(path: string, comment?: string): Promise<HostKeyResult> {
  try {
    return { identity: await loadIdentity(path), created: false };
  } catch (error) {
    if (!(error instanceof IdentityError) || error.code !== 'ERR_KEY_MISSING') throw error;
  }
  const identity = generateIdentity(comment);
  try {
    await writeIdentityFiles(path, identity);
  } catch (error) {
    if (!(error instanceof IdentityError) || error.code !== 'ERR_KEY_EXISTS') throw error;
    // Another process created the key first: use theirs. A leftover .pub without its private key is stale.
    if (await exists(path)) return { identity: await loadIdentity(path), created: false };
    await writeIdentityFiles(path, identity, { force: true });
  }
  return { identity, created: true };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function accessError(path: string, error: unknown): IdentityError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  const fix =
    code === 'EACCES' || code === 'EPERM'
      ? 'run mtt as the user who owns it'
      : code === 'EISDIR'
        ? "give the key file's path, not a folder"
        : 'check the path';
  return new IdentityError('ERR_FILE_ACCESS', `cannot read private key ${path} (${code}); ${fix}`, {
    cause: error,
  });
}
