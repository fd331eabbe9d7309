/** Runs the built `mtt` command as a user would, in a fresh HOME that the test owns. */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point. */
export const MTT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** What a finished command left behind. */
export interface MttResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh HOME with nothing in it, removed when the test ends. */
export async function freshHome(t: TestContext): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), `mtt-home-${process.pid}-`));
  t.after(() => rm(home, { recursive: true, force: true }));
  return home;
}

/** The environment of a user whose HOME is `home`: none of mtt's or XDG's overrides leak in. */
export function homeEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, ...extra };
  for (const name of ['MTT_CONFIG_DIR', 'XDG_CONFIG_HOME']) if (!(name in extra)) delete env[name];
  return env;
}

/** Runs `mtt ARGS` to completion (20 s at most). */
export function runMtt(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<MttResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [MTT, ...args],
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: 20_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** A long-running `mtt ARGS` (server, client), stopped with SIGTERM when the test ends. */
export interface RunningMtt {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout or stderr contains `text` (rejects after `ms`, or when the process exits). */
  waitFor(text: string | RegExp, ms?: number): Promise<void>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `mtt ARGS` in the background. */
export function spawnMtt(
  t: TestContext,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): RunningMtt {
  const child = spawn(process.execPath, [MTT, ...args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  t.after(stop);
  const matches = (text: string | RegExp) =>
    typeof text === 'string' ? out.includes(text) || err.includes(text) : text.test(out) || text.test(err);
  const waitFor = (text: string | RegExp, ms = 15_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (matches(text)) done(resolve);
      };
      const onExit = () => {
        if (!matches(text))
          done(() => reject(new Error(`mtt ${args[0]} exited before printing ${text}:\n${out}\n${err}`)));
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(new Error(`mtt ${args[0]} did not print ${text} within ${ms} ms:\n${out}\n${err}`)),
          ),
        ms,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        child.stdout.off('data', check);
        child.stderr.off('data', check);
        child.off('close', onExit);
        f();
      };
      child.stdout.on('data', check);
      child.stderr.on('data', check);
      child.on('close', onExit);
      check();
    });
  return { child, stdout: () => out, stderr: () => err, waitFor, stop };
}

/** util-linux's script(1): runs a command on a pseudo-terminal, as a person's shell would. */
const SCRIPT = '/usr/bin/script';

/** Runs `mtt ARGS` on a pseudo-terminal (stdout and stderr both go to it); resolves with what it showed. */
export async function runMttOnTty(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ code: number; output: string }> {
  const { existsSync } = await import('node:fs');
  if (!existsSync(SCRIPT)) {
    throw new Error(
      `${SCRIPT} is missing; install it with: apt-get install -y --no-install-recommends bsdutils`,
    );
  }
  const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, MTT, ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    execFile(
      SCRIPT,
      ['--quiet', '--return', '--command', command, '/dev/null'],
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: 20_000 },
      (err, stdout) => {
        // The terminal turns \n into \r\n.
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          output: stdout.replaceAll('\r\n', '\n'),
        });
      },
    );
  });
}
