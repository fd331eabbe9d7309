/** The external programs the bench drives, where they are, and installing them when we may. */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { sleep } from './procs.js';

/** A program the bench needs for some path or workload. */
export type Tool = 'sshd' | 'ssh' | 'ssh-keygen' | 'iperf3' | 'wrk' | 'nginx' | 'ss';

/** The Debian package that brings each tool. */
export const TOOL_PACKAGES: Record<Tool, string> = {
  sshd: 'openssh-server',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  iperf3: 'iperf3',
  wrk: 'wrk',
  nginx: 'nginx',
  ss: 'iproute2',
};

/** Where each found tool is. */
export type ToolPaths = Partial<Record<Tool, string>>;

/** The absolute path of an executable, searching PATH and the sbin folders. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Finds every tool. */
export function findTools(): ToolPaths {
  const found: ToolPaths = {};
  for (const tool of Object.keys(TOOL_PACKAGES) as Tool[]) {
    const at = which(tool);
    if (at) found[tool] = at;
  }
  return found;
}

/** The packages that would bring the missing tools. */
export function missingPackages(found: ToolPaths): string[] {
  const missing = (Object.keys(TOOL_PACKAGES) as Tool[]).filter((t) => !found[t]);
  return [...new Set(missing.map((t) => TOOL_PACKAGES[t]))];
}

/** True when running as root. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function aptGet(args: string[], log: (msg: string) => void): Promise<boolean> {
  // Another process sometimes holds the apt lock for a while: retry instead of failing.
  for (let attempt = 1; attempt <= 20; attempt++) {
    const r = spawnSync('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      encoding: 'utf8',
      timeout: 600_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.status === 0) return true;
    const why = `${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim().split('\n').slice(-2).join(' | ');
    log(`apt-get ${args[0]} failed (attempt ${attempt}): ${why}`);
    if (!/lock|Could not get|Temporary failure|timed out/i.test(why)) return false;
    await sleep(3000);
  }
  return false;
}

/** Finds the tools; as root with apt-get, installs the missing ones (unless `install` is false). */
export async function ensureTools(install: boolean, log: (msg: string) => void): Promise<ToolPaths> {
  let found = findTools();
  const pkgs = missingPackages(found);
  if (pkgs.length === 0) return found;
  if (install && isRoot() && which('apt-get')) {
    log(`installing ${pkgs.join(' ')} with apt-get`);
    if ((await aptGet(['update', '-qq'], log)) && (await aptGet(['install', '-y', '-qq', ...pkgs], log))) {
      found = findTools();
    }
  }
  const still = missingPackages(found);
  if (still.length > 0) {
    log(`missing programs; to measure every path install them with: apt-get install -y ${still.join(' ')}`);
  }
  return found;
}

/** The first line a version command prints, or undefined. */
export function versionLine(cmd: string, args: string[]): string | undefined {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
    const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim();
    return text.split('\n')[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The output of a short command, or undefined. */
export function tryExec(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    return undefined;
  }
}
