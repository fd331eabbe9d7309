/**
 * A real `mtt` command in a child process whose JSON log lines a test waits for: what the
 * end-to-end tests that need a separate process (kill -9, SIGSTOP, a restart, the admin socket) share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { MTT } from '../cli/run-mtt.js';

/** One JSON log line (a line that is not JSON is kept as `{ msg: line }`). */
export type LogRecord = Record<string, unknown>;

/** A background `mtt` with its log lines. */
export interface LoggedMtt {
  child: ChildProcess;
  /** Every log line so far, in order. */
  logs: LogRecord[];
  /** The first log line, so far or to come, that `match` accepts; rejects after `ms`. */
  waitLog(match: (l: LogRecord) => boolean, ms?: number): Promise<LogRecord>;
  /** The exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

/**
 * Runs `mtt ARGS --log-format json` (and `--log-level LEVEL` when given) with `env` over this
 * process's environment. Killed after the test if still running (SIGCONT first: a stopped one too).
 */
export function spawnMttLogged(
  t: TestContext,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { logLevel?: string } = {},
): LoggedMtt {
  const level = opts.logLevel === undefined ? [] : ['--log-level', opts.logLevel];
  const child = spawn(process.execPath, [MTT, ...args, '--log-format', 'json', ...level], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: LogRecord[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  child.stderr!.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });
  const waitLog = (match: (l: LogRecord) => boolean, ms = 10_000) =>
    new Promise<LogRecord>((resolve, reject) => {
      const check = () => {
        const hit = logs.find(match);
        if (!hit) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no such log line within ${ms} ms; last lines: ${JSON.stringify(logs.slice(-5))}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { child, logs, waitLog, exited };
}

/** `mtt server` on 127.0.0.1:port with public ports on 127.0.0.1, then `more` flags. */
export function loopbackServerArgs(port: number, ...more: string[]): string[] {
  return ['server', '--host', '127.0.0.1', '--port', String(port), '--public-host', '127.0.0.1', ...more];
}
