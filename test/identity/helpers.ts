import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** Path of ssh-keygen, used as the reference implementation of the OpenSSH formats. */
export const SSH_KEYGEN = '/usr/bin/ssh-keygen';

/** Throws (no skip) when ssh-keygen, the reference implementation, is not installed. */
export function requireSshKeygen(): void {
  if (!existsSync(SSH_KEYGEN)) {
    throw new Error(`${SSH_KEYGEN} is missing: apt-get install -y --no-install-recommends openssh-client`);
  }
}

/** A fresh temporary folder, removed after the test file finishes. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-identity-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
