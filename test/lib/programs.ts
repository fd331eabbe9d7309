/** Finding external programs, for the tests of every tier (the system tests re-export it from netns.ts). */
import { existsSync } from 'node:fs';
import path from 'node:path';

const SBIN = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** The absolute path of a program in PATH or the sbin folders, or undefined. */
export function findProgram(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...SBIN]) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}
