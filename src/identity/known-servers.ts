/**
 * The client's pinned server keys (trust on first use, like known_hosts): lines `host:port ssh-ed25519 AAAA…`.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { IdentityError } from './identity-error.js';
import { checkKeyFields, fingerprint, formatPublicKeyLine, parsePublicKeyLine } from './public-key.js';

/** Options for recordKnownServer. */
export interface RecordKnownServerOptions {
  /** Replace a pin to a different key instead of refusing (the user confirmed the server's key changed). */
  replace?: boolean;
}

interface KnownLine {
  hostPort: string;
  publicRaw: Buffer;
  line: number;
}

/** The pinned public key line (`ssh-ed25519 AAAA…`) for `hostPort`, or undefined when none is recorded. */
export async function lookupKnownServer(path: string, hostPort: string): Promise<string | undefined> {
  assertHostPort(hostPort);
  const text = await readIfExists(path);
  const found = parseKnownServers(text ?? '', path).find((k) => k.hostPort === hostPort);
  return found === undefined ? undefined : formatPublicKeyLine(found.publicRaw);
}

/** Pin `hostPort` to a key, atomically; refuses (ERR_KNOWN_SERVER_MISMATCH) to change a pin unless `replace`. */
export async function recordKnownServer(
  path: string,
  hostPort: string,
  publicKeyLine: string,
  options: RecordKnownServerOptions = {},
): Promise<'added' | 'exists' | 'replaced'> {
  assertHostPort(hostPort);
  const { publicRaw } = parsePublicKeyLine(publicKeyLine);
  const old = await readIfExists(path);
  const mode = old === undefined ? 0o644 : (await stat(path)).mode & 0o777;
  const known = parseKnownServers(old ?? '', path).filter((k) => k.hostPort === hostPort);
  if (known.some((k) => k.publicRaw.equals(publicRaw))) return 'exists';
  const newLine = `${hostPort} ${formatPublicKeyLine(publicRaw)}`;
  const stale = known[0];
  if (stale !== undefined) {
    if (!options.replace) {
      throw new IdentityError(
        'ERR_KNOWN_SERVER_MISMATCH',
        `${path}:${stale.line} pins ${hostPort} to key ${fingerprint(stale.publicRaw)}, not ${fingerprint(publicRaw)}; ` +
          `if the server's key really changed, delete that line and connect again`,
      );
    }
    const staleLines = new Set(known.map((k) => k.line));
    const kept = (old ?? '').split('\n').filter((_, i) => !staleLines.has(i + 1));
    const text = kept.join('\n');
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    await writeFileAtomic(path, `${text}${separator}${newLine}\n`, { mode });
    return 'replaced';
  }
  if (old === undefined) await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const base = old ?? '';
  const separator = base === '' || base.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(path, `${base}${separator}${newLine}\n`, { mode });
  return 'added';
}

/** Every line is checked: silently skipping a damaged pin would let a changed key be trusted anew. */
function parseKnownServers(text: string, source: string): KnownLine[] {
  const result: KnownLine[] = [];
  for (const [index, raw] of text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+)[ \t]+(\S+)(?:[ \t]+(\S+))?(?:[ \t]+.*)?$/.exec(line);
    const checked =
      match === null
        ? {
            ok: false as const,
            problem: 'expected "host:port ssh-ed25519 AAAA…"',
            fix: 'fix or delete the line',
          }
        : checkKeyFields(match[2] ?? '', match[3]);
    if (!checked.ok) {
      throw new IdentityError(
        'ERR_KNOWN_SERVERS_SYNTAX',
        `${source}:${index + 1}: ${checked.problem}; fix or delete the line (the server is pinned again on next connect)`,
      );
    }
    result.push({ hostPort: match?.[1] ?? '', publicRaw: checked.publicRaw, line: index + 1 });
  }
  return result;
}

function assertHostPort(hostPort: string): void {
  if (!/^[^\s#]\S*$/.test(hostPort)) {
    throw new IdentityError(
      'ERR_KNOWN_SERVERS_SYNTAX',
      `server address "${hostPort}" cannot be pinned; give it as host:port with no spaces`,
    );
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new IdentityError(
      'ERR_FILE_ACCESS',
      `cannot read known servers file ${path} (${code}); check its path`,
      {
        cause: error,
      },
    );
  }
}
