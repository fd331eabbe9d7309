/** `mtt keygen` and `mtt allow`. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defaultPaths } from '../config/paths.js';
import {
  appendToAllowList,
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  parsePortRanges,
  parsePublicKeyLine,
  publicKeyPath,
  writeIdentityFiles,
} from '../identity/index.js';
import { escapeControls, hasControls } from '../util/escape.js';
import { makeLogging } from './logging.js';
import { parseCommand } from './parse-command.js';
import { UsageError } from './usage-error.js';

const KEYGEN_HELP = `Usage: mtt keygen [-f FILE] [-C COMMENT] [--force]

Makes an Ed25519 identity key: FILE (private, mode 0600, OpenSSH format) and FILE.pub
("ssh-ed25519 AAAA… comment"), and prints its SHA256 fingerprint as ssh-keygen -l does.

  -f, --file FILE      where to write (default: ${defaultPaths.identity()})
  -C, --comment TEXT   comment in the public key line (default: user@host)
      --force          overwrite an existing key
`;

/** mtt keygen */
export async function runKeygen(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    file: { type: 'string', short: 'f' },
    comment: { type: 'string', short: 'C' },
    force: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(KEYGEN_HELP);
    return 0;
  }
  makeLogging(values);
  const comment = values.comment as string | undefined;
  if (comment !== undefined && hasControls(comment)) {
    throw new UsageError(
      `the comment "${escapeControls(comment)}" contains control characters; use plain text (-C 'me@laptop')`,
    );
  }
  const path = resolve((values.file as string | undefined) ?? defaultPaths.identity());
  const identity = generateIdentity(comment);
  await writeIdentityFiles(path, identity, { force: values.force === true });
  const line = formatPublicKeyLine(identity.publicRaw, identity.comment);
  process.stdout.write(
    `Wrote ${path} (private, 0600) and ${publicKeyPath(path)}\n` +
      `Fingerprint: ${fingerprint(identity.publicRaw)}\n` +
      `Public key:  ${line}\n`,
  );
  return 0;
}

const ALLOW_HELP = `Usage: mtt allow KEY.pub|"ssh-ed25519 AAAA…" [--allowed-keys FILE] [--permit-listen PORTS]

Adds a client's public key to the server's allow-list (authorized_keys style). A running server
applies the change at once.

  --allowed-keys FILE    the allow-list (default: ${defaultPaths.allowedKeys()})
  --permit-listen PORTS  ports this key may open, e.g. 8080,10000-10100 (default: any the server allows)
`;

/** mtt allow */
export async function runAllow(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { 'allowed-keys': { type: 'string' }, 'permit-listen': { type: 'string' } },
    true,
  );
  if (values.help) {
    process.stdout.write(ALLOW_HELP);
    return 0;
  }
  makeLogging(values);
  if (positionals.length !== 1) {
    throw new UsageError(
      'give exactly one key: a .pub file or a quoted "ssh-ed25519 AAAA…" line (mtt allow --help)',
    );
  }
  const arg = positionals[0]!;
  let line = arg.startsWith('ssh-') ? arg : (await readKeyFile(arg)).trim();
  const parsed = parsePublicKeyLine(line);
  const permit = values['permit-listen'] as string | undefined;
  if (permit !== undefined) {
    parsePortRanges(permit);
    line = `permitlisten="${permit}" ${formatPublicKeyLine(parsed.publicRaw, parsed.comment)}`;
  }
  const file = resolve((values['allowed-keys'] as string | undefined) ?? defaultPaths.allowedKeys());
  const result = await appendToAllowList(file, line);
  const fp = fingerprint(parsed.publicRaw);
  process.stdout.write(result === 'added' ? `Added ${fp} to ${file}\n` : `${fp} is already in ${file}\n`);
  return 0;
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}
