/**
 * The server's allow-list, in OpenSSH authorized_keys style:
 * `[permitlisten="PORTS"][,permitfrom="CIDR,…"] ssh-ed25519 AAAA… [comment]`, one key per line,
 * `#` comments.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseCidr } from '../config/host-port.js';
import { parseRate, rateProblem } from '../config/rate.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { escapeControls, hasControls } from '../util/escape.js';
import { IdentityError } from './identity-error.js';
import type { PortRange } from './port-range.js';
import { ANY_PORT, parsePortRanges } from './port-range.js';
import { checkKeyFields, ED25519_KEY_TYPE, fingerprint } from './public-key.js';
import { shellQuote } from './shell-quote.js';

/** A block of visitor addresses (CIDR), as permitfrom gives it. */
export interface AddressBlockOption {
  family: 4 | 6;
  prefix: number;
  /** The network address, 4 or 16 bytes. */
  address: Buffer;
  /** As written ("203.0.113.0/24"). */
  text: string;
}

/** Per-key options from the line's option prefix. */
export interface AllowListOptions {
  /** Ports this key may listen on; [1-65535] when the line has no permitlisten (the server's own limits still apply). */
  permitListen: PortRange[];
  /**
   * Visitor addresses this key's tunnels accept (permitfrom); undefined when the line has none
   * (any visitor). A tunnel's own permitFrom can only narrow it.
   */
  permitFrom?: AddressBlockOption[];
  /** The most connections each tunnel of this key may have open at once (maxconnections); none when absent. */
  maxConnections?: number;
  /** The most bytes per second each way through each tunnel of this key (ratelimit); none when absent. */
  rateLimit?: number;
}

/** One allowed key. */
export interface AllowListEntry {
  /** The raw 32-byte Ed25519 public key. */
  publicRaw: Buffer;
  /** `SHA256:…`, as ssh-keygen -l prints it. */
  fingerprint: string;
  /** Text after the key data ('' when absent). */
  comment: string;
  /** Parsed options. */
  options: AllowListOptions;
  /** 1-based line number in the source. */
  line: number;
}

/** Result of loadAllowList; `exists: false` lets the caller decide whether a missing file is an error. */
export interface LoadedAllowList {
  /** Entries in file order. */
  entries: AllowListEntry[];
  /** False when the file does not exist (entries is then empty). */
  exists: boolean;
}

type LineResult =
  | { ok: true; entry: Omit<AllowListEntry, 'line'> }
  | { ok: false; problem: string; fix: string };

const OPTION_FIX =
  'the options are permitlisten="PORT", "LOW-HIGH" or "*", permitfrom="CIDR,…", maxconnections="N" and ratelimit="10MB/s"; remove the others';

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
  let text: string;
  try {
    await assertNotWritableByOthers(path);
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { entries: [], exists: false };
    throw new IdentityError(
      'ERR_FILE_ACCESS',
      `cannot read allow-list ${path} (${code}); check its path and owner`,
      {
        cause: error,
      },
    );
  }
  return { entries: parseAllowList(text, path), exists: true };
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

  let old = '';
  let mode = 0o600;
  try {
    await assertNotWritableByOthers(path);
    old = await readFile(path, 'utf8');
    mode = (await stat(path)).mode & 0o777;
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  }
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
  let old: string;
  try {
    await assertNotWritableByOthers(path);
    old = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IdentityError(
        'ERR_KEY_MISSING',
        `allow-list ${path} does not exist, so ${wanted} is not in it`,
      );
    }
    throw error;
  }
  const mode = (await stat(path)).mode & 0o777;
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

/** Parse one non-blank, non-comment line. */
function parseAllowListLine(line: string): LineResult {
  let rest = line;
  let permitListen: PortRange[] | undefined;
  let permitFrom: AddressBlockOption[] | undefined;
  let maxConnections: number | undefined;
  let rateLimit: number | undefined;
  const first = /^\S+/.exec(rest)?.[0] ?? '';
  // A line starts with options unless its first word is a key type or key data (as in authorized_keys).
  if (first !== ED25519_KEY_TYPE && !looksLikeKeyType(first) && !first.startsWith('AAAA')) {
    const options = splitOptions(rest);
    if (!options.ok) return options;
    for (const option of options.list) {
      const lower = option.name.toLowerCase();
      if (lower === 'maxconnections') {
        const v = option.value?.trim() ?? '';
        if (!/^\d{1,10}$/.test(v) || Number(v) < 1 || Number(v) > 0xffff_ffff) {
          return {
            ok: false,
            problem: `maxconnections="${option.value ?? ''}" is not a whole number from 1 to 4294967295`,
            fix: 'write maxconnections="100" (connections open at once per tunnel)',
          };
        }
        maxConnections = Number(v);
        continue;
      }
      if (lower === 'ratelimit') {
        const problem = rateProblem(option.value ?? '', 'ratelimit');
        if (problem) return { ok: false, problem, fix: '' };
        rateLimit = parseRate(option.value ?? '');
        continue;
      }
      if (lower === 'permitfrom') {
        const blocks = parsePermitFrom(option.value);
        if (!Array.isArray(blocks)) return blocks;
        permitFrom = [...(permitFrom ?? []), ...blocks];
        continue;
      }
      if (option.name.toLowerCase() !== 'permitlisten') {
        return { ok: false, problem: `unknown option "${option.name}"`, fix: OPTION_FIX };
      }
      if (option.value === undefined) {
        return { ok: false, problem: 'permitlisten needs a value', fix: 'write permitlisten="8080"' };
      }
      try {
        permitListen = [...(permitListen ?? []), ...parsePortRanges(option.value)];
      } catch (error) {
        if (!(error instanceof IdentityError)) throw error;
        // The port parser's message already names the fix.
        return { ok: false, problem: `in permitlisten="${option.value}", ${error.message}`, fix: '' };
      }
    }
    rest = options.rest.trimStart();
    if (rest === '') {
      return {
        ok: false,
        problem: 'options are not followed by a key',
        fix: 'add "ssh-ed25519 AAAA…" after them',
      };
    }
  }
  const match = /^(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(.*))?$/.exec(rest);
  const checked = checkKeyFields(match?.[1] ?? '', match?.[2]);
  if (!checked.ok) return checked;
  return {
    ok: true,
    entry: {
      publicRaw: checked.publicRaw,
      fingerprint: fingerprint(checked.publicRaw),
      comment: (match?.[3] ?? '').trim(),
      options: {
        permitListen: permitListen ?? [{ ...ANY_PORT }],
        ...(permitFrom ? { permitFrom } : {}),
        ...(maxConnections !== undefined ? { maxConnections } : {}),
        ...(rateLimit !== undefined ? { rateLimit } : {}),
      },
    },
  };
}

/** permitfrom="203.0.113.0/24,2001:db8::/32": CIDR blocks or single addresses, comma-separated. */
function parsePermitFrom(
  value: string | undefined,
): AddressBlockOption[] | { ok: false; problem: string; fix: string } {
  if (value === undefined || value.trim() === '') {
    return {
      ok: false,
      problem: 'permitfrom needs a value',
      fix: 'write permitfrom="203.0.113.0/24,2001:db8::/32" (addresses or CIDR blocks)',
    };
  }
  const out: AddressBlockOption[] = [];
  for (const part of value.split(',')) {
    const text = part.trim();
    const block = parseCidr(text);
    if (typeof block === 'string')
      return { ok: false, problem: `in permitfrom="${value}", ${block}`, fix: '' };
    out.push({ family: block.family, prefix: block.prefix, address: Buffer.from(block.bytes), text });
  }
  return out;
}

function describe(failure: { problem: string; fix: string }): string {
  return failure.fix === '' ? failure.problem : `${failure.problem}; ${failure.fix}`;
}

function looksLikeKeyType(word: string): boolean {
  return /^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+$/.test(word);
}

type Option = { name: string; value: string | undefined };

/** Split `name[="value"],…` up to the first unquoted blank; `\"` escapes a quote inside a value. */
function splitOptions(
  text: string,
): { ok: true; list: Option[]; rest: string } | { ok: false; problem: string; fix: string } {
  const list: Option[] = [];
  let i = 0;
  for (;;) {
    const name = /^[A-Za-z0-9_-]+/.exec(text.slice(i))?.[0];
    if (name === undefined) {
      return {
        ok: false,
        problem: `unexpected text "${text.slice(i, i + 20)}" where an option or key type should be`,
        fix: 'lines look like: [permitlisten="8080"] ssh-ed25519 AAAA… comment',
      };
    }
    i += name.length;
    let value: string | undefined;
    if (text[i] === '=') {
      if (text[i + 1] !== '"') {
        return {
          ok: false,
          problem: `the value of ${name} is not in double quotes`,
          fix: `write ${name}="…"`,
        };
      }
      i += 2;
      value = '';
      for (;;) {
        const ch = text[i];
        if (ch === undefined) {
          return {
            ok: false,
            problem: `the value of ${name} has no closing quote`,
            fix: 'add the closing "',
          };
        }
        if (ch === '"') break;
        if (ch === '\\' && text[i + 1] === '"') {
          value += '"';
          i += 2;
          continue;
        }
        value += ch;
        i += 1;
      }
      i += 1;
    }
    list.push({ name, value });
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    if (i >= text.length || text[i] === ' ' || text[i] === '\t')
      return { ok: true, list, rest: text.slice(i) };
    return {
      ok: false,
      problem: `unexpected "${text[i]}" after option ${name}`,
      fix: 'separate options with commas and put a space before the key type',
    };
  }
}

/** sshd's StrictModes rule: a list that others can change would let them add their own key. */
async function assertNotWritableByOthers(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const stats = await stat(path);
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
    throw new IdentityError(
      'ERR_KEY_PERMISSIONS',
      `allow-list ${path} can be changed by group or others (mode ${mode}); run: chmod 600 ${shellQuote(path)}`,
    );
  }
}
