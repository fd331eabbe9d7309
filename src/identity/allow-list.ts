/**
 * The server's allow-list, in OpenSSH authorized_keys style:
 * `[permitlisten="PORTS"][,permitfrom="CIDR,…"] ssh-ed25519 AAAA… [comment]`, one key per line,
 * `#` comments. This file reads, checks and edits the file; allow-list-line.ts parses one line.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { escapeControls, hasControls } from '../util/escape.js';
import { type AllowListEntry, describe, parseAllowListLine } from './allow-list-line.js';
import { IdentityError } from './identity-error.js';
import { shellQuote } from './shell-quote.js';

export type { AddressBlockOption, AllowListEntry, AllowListOptions } from './allow-list-line.js';

/** Result of loadAllowList; `exists: false` lets the caller decide whether a missing file is an error. */
export interface LoadedAllowList {
  /** Entries in file order. */
  entries: AllowListEntry[];
  /** False when the file does not exist (entries is then empty). */
  exists: boolean;
}

/** Parse allow-list text; throws ERR_ALLOWLIST_SYNTAX as "SOURCE:LINE: problem; fix" on the first bad line. */
export function parseAllowList(text: string, sourceName: string): AllowListEntry[] {
  const entries: AllowListEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (const [index, rawLine] of lines.entries()) {
    const lineNo = index + 1;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const result = parseAllowListLine(line);
    if (!result.ok) {
      throw new IdentityError('ERR_ALLOWLIST_SYNTAX', `${sourceName}:${lineNo}: ${describe(result)}`);
    }
    const key = result.entry.publicRaw.toString('hex');
    const first = seen.get(key);
    if (first !== undefined) {
      throw new IdentityError(
        'ERR_ALLOWLIST_SYNTAX',
        `${sourceName}:${lineNo}: key ${result.entry.fingerprint} is already listed on line ${first}; ` +
          'keep one line per key (merge their permitlisten options)',
      );
    }
    seen.set(key, lineNo);
    entries.push({ ...result.entry, line: lineNo });
  }
  return entries;
}

/** Read and parse an allow-list file; a missing file gives `{ entries: [], exists: false }`. */
export async function loadAllowList(path: string): Promise<LoadedAllowList> {
  const file = await readAllowListFile(path);
  if (file === undefined) return { entries: [], exists: false };
  return { entries: parseAllowList(file.text, path), exists: true };
}

/** Add one key line (options allowed) to the allow-list, atomically; 'exists' when the key is already there. */
export async function appendToAllowList(path: string, publicKeyLine: string): Promise<'added' | 'exists'> {
  const lines = publicKeyLine
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1 || lines[0] === undefined) {
    throw new IdentityError(
      'ERR_KEY_FORMAT',
      `expected exactly one public key line, got ${lines.length}; give one .pub file or one "ssh-ed25519 AAAA…" line`,
    );
  }
  const line = lines[0];
  const result = parseAllowListLine(line);
  if (!result.ok) throw new IdentityError('ERR_KEY_FORMAT', `the key to add: ${describe(result)}`);
  if (hasControls(result.entry.comment)) {
    // The comment is shown by mtt allow --list, in logs and on terminals: keep control bytes out of the file.
    throw new IdentityError(
      'ERR_KEY_FORMAT',
      `the key's comment "${escapeControls(result.entry.comment)}" contains control characters; ` +
        'edit the comment in the .pub file (or give the key line with a plain-text comment)',
    );
  }

  const file = await readAllowListFile(path);
  if (file === undefined) await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const { text: old, mode } = file ?? { text: '', mode: 0o600 };
  // A broken file must be fixed first: appending to it would hide the problem until the server reloads.
  const entries = parseAllowList(old, path);
  if (entries.some((e) => e.publicRaw.equals(result.entry.publicRaw))) return 'exists';
  const separator = old === '' || old.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(path, `${old}${separator}${line}\n`, { mode });
  return 'added';
}

/** Result of removeFromAllowList. */
export interface RemovedFromAllowList {
  /** The entry taken out of the file. */
  removed: AllowListEntry;
  /** Entries left in the file. */
  remaining: number;
}

/**
 * Remove one key from the allow-list, atomically: `key` is its fingerprint (`SHA256:…`) or its
 * public key line. Only that key's line goes; comments, blank lines, the other keys and the file's
 * mode stay as they were. Throws ERR_KEY_MISSING when the key is not listed, and refuses a file that
 * changed while it was being edited (run the command again).
 */
export async function removeFromAllowList(path: string, key: string): Promise<RemovedFromAllowList> {
  const wanted = key.trim();
  let match: (e: AllowListEntry) => boolean;
  if (/^SHA256:[A-Za-z0-9+/]{43}$/.test(wanted)) {
    match = (e) => e.fingerprint === wanted;
  } else {
    const parsed = parseAllowListLine(wanted);
    if (!parsed.ok) {
      throw new IdentityError(
        'ERR_KEY_FORMAT',
        `the key to remove: ${describe(parsed)}; give its fingerprint (SHA256:…), its .pub file or its key line`,
      );
    }
    match = (e) => e.publicRaw.equals(parsed.entry.publicRaw);
  }
  const file = await readAllowListFile(path);
  if (file === undefined) {
    throw new IdentityError(
      'ERR_KEY_MISSING',
      `allow-list ${path} does not exist, so ${wanted} is not in it`,
    );
  }
  const { text: old, mode } = file;
  const entries = parseAllowList(old, path);
  const removed = entries.find(match);
  if (removed === undefined) {
    throw new IdentityError(
      'ERR_KEY_MISSING',
      `${wanted.startsWith('SHA256:') ? wanted : 'that key'} is not in ${path}; mtt allow --list shows the keys`,
    );
  }
  const lines = old.split('\n');
  lines.splice(removed.line - 1, 1);
  // Someone else's edit between our read and our write would be lost: check just before replacing.
  if ((await readFile(path, 'utf8')) !== old) {
    throw new IdentityError(
      'ERR_FILE_ACCESS',
      `${path} changed while it was being edited; run the command again`,
    );
  }
  await writeFileAtomic(path, lines.join('\n'), { mode });
  return { removed, remaining: entries.length - 1 };
}

/**
 * The allow-list's text and mode; undefined when the file does not exist. It is refused, as sshd's
 * StrictModes does, when group or others can change it (they could add their own key); any other
 * failure to read it is ERR_FILE_ACCESS naming the path.
 */
async function readAllowListFile(path: string): Promise<{ text: string; mode: number } | undefined> {
  try {
    const stats = await stat(path);
    if (process.platform !== 'win32' && (stats.mode & 0o022) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      throw new IdentityError(
        'ERR_KEY_PERMISSIONS',
        `allow-list ${path} can be changed by group or others (mode ${mode}); run: chmod 600 ${shellQuote(path)}`,
      );
    }
    return { text: await readFile(path, 'utf8'), mode: stats.mode & 0o777 };
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new IdentityError(
      'ERR_FILE_ACCESS',
      `cannot read allow-list ${path} (${code}); check its path and owner`,
      {
        cause: error,
      },
    );
  }
}
