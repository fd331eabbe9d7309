/** `mtt gui` as a real child process, with bounded waits for what it prints and for its exit. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../../../src/cli/main.js', import.meta.url));

export interface GuiProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout match of `re`, or rejects after timeoutMs (with stderr). */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves with [code, signal] once it exits, or rejects after timeoutMs. */
  exited(timeoutMs?: number): Promise<[number | null, NodeJS.Signals | null]>;
}

/** Starts `node mtt gui ARGS` with `env`; killed after the test if still running. */
export function spawnGui(t: TestContext, args: string[], env: NodeJS.ProcessEnv): GuiProcess {
  const child = spawn(process.execPath, [CLI, 'gui', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const wakers = new Set<() => void>();
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of [...wakers]) w();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForOutput: (re, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          wakers.delete(check);
          reject(new Error(`no ${re} on stdout within ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const check = () => {
          const m = re.exec(out);
          if (!m) return;
          clearTimeout(timer);
          wakers.delete(check);
          resolve(m);
        };
        wakers.add(check);
        check();
      }),
    exited: (timeoutMs = 15_000) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        exit.finally(() => clearTimeout(timer)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`mtt gui did not exit within ${timeoutMs} ms; stderr:\n${err}`)),
            timeoutMs,
          );
        }),
      ]);
    },
  };
}
