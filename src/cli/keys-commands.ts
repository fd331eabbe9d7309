/** `mtt keygen` and `mtt allow`. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defaultPaths } from '../config/paths.js';
import {
  appendToAllowList,
  fingerprint,
  formatPortRanges,
  formatPublicKeyLine,
  generateIdentity,
  loadAllowList,
  parsePortRanges,
  parsePublicKeyLine,
  publicKeyPath,
  removeFromAllowList,
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
       mtt allow --list [--allowed-keys FILE]
       mtt allow --remove KEY.pub|"ssh-ed25519 AAAA…"|SHA256:… [--allowed-keys FILE]

Adds a client's public key to the server's allow-list (authorized_keys style), lists the keys, or
removes one. A running server applies a change at once; removing a key ends that client's session.
Edits are atomic and keep the file's comments, blank lines and other keys as they are.

  --allowed-keys FILE    the allow-list (default: ${defaultPaths.allowedKeys()})
  --permit-listen PORTS  ports this key may open, e.g. 8080,10000-10100 (default: any the server allows)
  --list                 print each key: fingerprint, comment, the ports it may open, its line
  --remove KEY           remove a key, given by its fingerprint, its .pub file or its key line
`;

/** mtt allow */
export async function runAllow(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      'allowed-keys': { type: 'string' },
      'permit-listen': { type: 'string' },
      list: { type: 'boolean' },
      remove: { type: 'string' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(ALLOW_HELP);
    return 0;
  }
  makeLogging(values);
  const file = resolve((values['allowed-keys'] as string | undefined) ?? defaultPaths.allowedKeys());
  const modes = [values.list === true, values.remove !== undefined, positionals.length > 0].filter(Boolean);
  if (modes.length > 1 || (values['permit-listen'] !== undefined && positionals.length === 0)) {
    throw new UsageError(
      'give one of: a key to add (with --permit-listen if wanted), --list, or --remove KEY (mtt allow --help)',
    );
  }
  if (values.list === true) return listAllowed(file);
  if (values.remove !== undefined) return removeAllowed(file, values.remove as string);
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
  const result = await appendToAllowList(file, line);
  const fp = fingerprint(parsed.publicRaw);
  process.stdout.write(result === 'added' ? `Added ${fp} to ${file}\n` : `${fp} is already in ${file}\n`);
  return 0;
}

/** mtt allow --list: one line per key; comments are escaped (the file may hold anything). */
async function listAllowed(file: string): Promise<number> {
  const { entries, exists } = await loadAllowList(file);
  if (!exists) {
    process.stdout.write(
      `${file} does not exist yet: no client may connect (add one with mtt allow KEY.pub)\n`,
    );
    return 0;
  }
  process.stdout.write(`${entries.length} key${entries.length === 1 ? '' : 's'} in ${file}\n`);
  for (const e of entries) {
    const ports = formatPortRanges(e.options.permitListen);
    const comment = e.comment === '' ? '(no comment)' : escapeControls(e.comment);
    const from = e.options.permitFrom ? `  from=${e.options.permitFrom.map((b) => b.text).join(',')}` : '';
    process.stdout.write(`${e.fingerprint}  ${comment}  ports=${ports}${from}  line ${e.line}\n`);
  }
  return 0;
}

/** mtt allow --remove KEY */
async function removeAllowed(file: string, key: string): Promise<number> {
  // A .pub file is read; a fingerprint or a key line is used as given.
  const text = key.startsWith('SHA256:') || key.startsWith('ssh-') ? key : (await readKeyFile(key)).trim();
  const { removed, remaining } = await removeFromAllowList(file, text);
  const comment = removed.comment === '' ? '' : ` (${escapeControls(removed.comment)})`;
  process.stdout.write(
    `Removed ${removed.fingerprint}${comment} from ${file}, line ${removed.line}; ${remaining} key${remaining === 1 ? '' : 's'} left\n`,
  );
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
