/**
 * A newcomer's machine for the packaging tests: the package packed from this working tree (as
 * `npm pack` in a clean copy does it, prepack included), a package registry on loopback that serves
 * it and its dependencies (lock-registry.ts), and a user with a fresh HOME, a folder outside the
 * repository and npm pointed at that registry and at a fresh global prefix.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LockRegistry, startLockRegistry } from './lock-registry.js';

/** The repository this test was built from. */
export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

/** What `npm pack --json` says about the tarball. */
export interface Packed {
  tarball: string;
  size: number;
  unpackedSize: number;
  files: string[];
}

/** A user of the packed package. */
export interface Newcomer {
  packed: Packed;
  registry: LockRegistry;
  /** The fresh HOME. */
  home: string;
  /** npm's global prefix (`mtt` lands in PREFIX/bin). */
  prefix: string;
  /** The environment of this user: PATH with PREFIX/bin, npm configured by npm_config_* variables. */
  env: NodeJS.ProcessEnv;
  /** Runs a command as this user (cwd: HOME); rejects with its output when it fails. */
  run(
    cmd: string,
    args: string[],
    opts?: { cwd?: string; allowFail?: boolean; env?: NodeJS.ProcessEnv },
  ): Promise<RunOut>;
  /** A fresh folder under the test's temp folder. */
  folder(name: string): string;
}

/** What a finished command printed. */
export interface RunOut {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where cleanups are registered: a TestContext, or node:test's top-level hooks. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

function temp(t: Cleanup, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mtt-pkg-${process.pid}-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The npm cache of the user running the tests: where `npm ci` left the dependencies' tarballs. */
function npmCache(): string {
  return execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
}

/** A PATH whose `node` is the one running the tests (CI runs them on Node 24 from the registry). */
function basePath(): string {
  return [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].join(':');
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; allowFail?: boolean },
): Promise<RunOut> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: 300_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        if (code !== 0 && !opts.allowFail) {
          reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${stdout}\n${stderr}`));
        } else resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A copy of the working tree as git sees it (tracked and new files, nothing ignored), node_modules linked. */
export function copyOfWorkingTree(t: Cleanup, name: string): string {
  const dest = join(temp(t, name), 'repo');
  let files: string[];
  try {
    files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
      cwd: REPO,
      encoding: 'utf8',
    })
      .split('\0')
      // A node_modules symlink (a worktree sharing another's) is not ignored by the folder pattern.
      .filter((f) => f !== '' && f !== 'node_modules' && !f.startsWith('node_modules/'));
  } catch (err) {
    throw new Error(
      `the packaging tests copy the working tree with git (apt-get install -y --no-install-recommends git): ${(err as Error).message}`,
    );
  }
  for (const f of files) {
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    try {
      cpSync(join(REPO, f), join(dest, f));
    } catch (err) {
      // A file deleted in the working tree but not yet in git's index.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return dest;
}

/** `npm pack` in a copy of the working tree: prepack builds it there, so this checkout's dist is untouched. */
export async function packWorkingTree(t: Cleanup): Promise<Packed> {
  const copy = copyOfWorkingTree(t, 'pack');
  symlinkSync(join(REPO, 'node_modules'), join(copy, 'node_modules'));
  const out = join(dirname(copy), 'out');
  mkdirSync(out);
  const env = { ...process.env, PATH: `${basePath()}:${process.env.PATH ?? ''}` };
  const r = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: copy, env });
  const info = (
    JSON.parse(r.stdout) as Array<{
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    }>
  )[0]!;
  return {
    tarball: join(out, info.filename),
    size: info.size,
    unpackedSize: info.unpackedSize,
    files: info.files.map((f) => f.path),
  };
}

/** A newcomer with the packed package available from a loopback registry (not yet installed). */
export async function newcomer(t: Cleanup, packed: Packed): Promise<Newcomer> {
  const cache = npmCache();
  const registry = await startLockRegistry(t, cache, { tarball: packed.tarball });
  const root = temp(t, 'user');
  const home = join(root, 'home');
  const prefix = join(root, 'prefix');
  mkdirSync(home);
  mkdirSync(prefix);
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: `${join(prefix, 'bin')}:${basePath()}`,
    LANG: 'C.UTF-8',
    TERM: 'xterm',
    // script(1) runs a line with $SHELL -c: bash execs it, as a person's shell runs it in the
    // foreground (dash would stay in between and die of the Ctrl-C itself).
    SHELL: '/bin/bash',
    npm_config_registry: registry.url,
    npm_config_prefix: prefix,
    // The cache npm ci filled (the registry serves its tarballs from there too).
    npm_config_cache: cache,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  let n = 0;
  return {
    packed,
    registry,
    home,
    prefix,
    env,
    run: (cmd, args, opts = {}) =>
      run(cmd, args, {
        cwd: opts.cwd ?? home,
        env: { ...env, ...opts.env },
        ...(opts.allowFail ? { allowFail: true } : {}),
      }),
    folder: (name) => {
      const dir = join(root, `${name}-${++n}`);
      mkdirSync(dir);
      return dir;
    },
  };
}
