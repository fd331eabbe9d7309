/**
 * Child processes for the bench: every process the harness starts lives in a Scope, every wait has a
 * timeout, and everything still running is killed on Ctrl-C, on an error and at exit.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';

/** Thrown when a bounded wait runs out. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Races `promise` against a timer; the timer never outlives the race. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what}: no answer within ${fmtMs(ms)}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** "1.5 s" or "250 ms". */
export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How a process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options for {@link Scope.spawn}. */
export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Raise RLIMIT_NOFILE to this (soft and hard) in a wrapping shell before exec; root can exceed the hard limit. */
  nofile?: number;
  /** Run inside this network namespace (`ip netns exec NAME`, which execs in place: the pid stays). */
  netns?: string;
  /** Keep a pipe to the child's stdin (helpers exit when it closes). Default: ignore. */
  stdin?: boolean;
  /** Append stdout and stderr here. */
  logFile?: string;
  /** How many characters of each stream to keep in memory. Default 256 KiB. */
  keep?: number;
}

const MAX_LINES = 4000;

/** iproute2's `ip`, for children spawned inside a network namespace. */
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((f) => existsSync(f)) ?? 'ip';

/** A spawned child in its own process group, with its output kept and searchable line by line. */
export class Proc {
  /** Short name for messages. */
  readonly name: string;
  /** Process id (also its process group id). */
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** Set once the process has exited. */
  exit: ExitInfo | undefined;
  readonly #child: ChildProcess;
  readonly #keep: number;
  #out = '';
  #err = '';
  readonly #lines: string[] = [];
  #partial = '';
  readonly #waiters = new Set<{ test: (line: string) => boolean; resolve: (line: string) => void }>();
  readonly #log: WriteStream | undefined;

  constructor(name: string, cmd: string, args: string[], opts: SpawnOptions = {}) {
    this.name = name;
    this.#keep = opts.keep ?? 256 * 1024;
    let file = cmd;
    let argv = args;
    if (opts.nofile) {
      // dash's `ulimit -n` sets soft and hard; a non-root user falls back to its hard limit.
      const script = `ulimit -n ${opts.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
      file = '/bin/sh';
      argv = ['-c', script, 'sh', cmd, ...args];
    }
    if (opts.netns) {
      argv = ['netns', 'exec', opts.netns, file, ...argv];
      file = IP;
    }
    this.#child = spawn(file, argv, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    if (this.#child.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error' just after).
      this.pid = -1;
    } else {
      this.pid = this.#child.pid;
    }
    if (opts.logFile) {
      this.#log = createWriteStream(opts.logFile, { flags: 'a' });
      this.#log.on('error', () => {});
      this.#log.write(`\n=== ${new Date().toISOString()} ${name}: ${[cmd, ...args].join(' ')}\n`);
    }
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo) => {
        if (this.exit) return;
        this.exit = info;
        this.#log?.write(`=== exit ${JSON.stringify(info)}\n`);
        resolve(info);
      };
      this.#child.on('exit', (code, signal) => done({ code, signal }));
      this.#child.on('error', (err) => {
        this.#err += `spawn ${cmd}: ${err.message}\n`;
        done({ code: 127, signal: null });
      });
    });
    this.#child.stdout?.setEncoding('utf8');
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stdout?.on('data', (chunk: string) => this.#onData(chunk, false));
    this.#child.stderr?.on('data', (chunk: string) => this.#onData(chunk, true));
    this.#child.stdin?.on('error', () => {});
  }

  #onData(chunk: string, isErr: boolean): void {
    this.#log?.write(chunk);
    if (isErr) {
      this.#err = (this.#err + chunk).slice(-this.#keep);
      return;
    }
    this.#out = (this.#out + chunk).slice(-this.#keep);
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const line of parts) {
      this.#lines.push(line);
      if (this.#lines.length > MAX_LINES) this.#lines.shift();
      for (const w of this.#waiters) {
        if (w.test(line)) {
          this.#waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  }

  /** Everything kept from stdout. */
  get stdout(): string {
    return this.#out;
  }

  /** Everything kept from stderr. */
  get stderr(): string {
    return this.#err;
  }

  /** The last lines of stderr (and stdout when stderr is empty), for error messages. */
  tail(lines = 8): string {
    const text = (this.#err.trim() || this.#out.trim()).split('\n').slice(-lines).join(' | ');
    return text.length > 600 ? `…${text.slice(-600)}` : text;
  }

  /** Describes how the process ended, with its last output. */
  describeExit(): string {
    const how = this.exit?.signal ? `signal ${this.exit.signal}` : `exit code ${this.exit?.code}`;
    const tail = this.tail();
    return `${this.name} ended (${how})${tail ? `: ${tail}` : ''}`;
  }

  /** Writes to the child's stdin (if it was kept). */
  send(text: string): void {
    this.#child.stdin?.write(text);
  }

  /** Closes the child's stdin (end of input). */
  closeStdin(): void {
    this.#child.stdin?.end();
  }

  /** Waits for a stdout line (seen before or after the call) that passes `test`. */
  async waitForLine(test: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const seen = this.#lines.find(test);
    if (seen !== undefined) return seen;
    if (this.exit) throw new Error(`${what}: ${this.describeExit()}`);
    let waiter: { test: (line: string) => boolean; resolve: (line: string) => void } | undefined;
    const found = new Promise<string>((resolve) => {
      waiter = { test, resolve };
      this.#waiters.add(waiter);
    });
    const died = this.exited.then(async () => {
      await sleep(50); // the last lines may still be in the pipe when 'exit' fires
      const late = this.#lines.find(test);
      if (late !== undefined) return late;
      throw new Error(`${what}: ${this.describeExit()}`);
    });
    try {
      return await withTimeout(Promise.race([found, died]), timeoutMs, `${what} (${this.name})`);
    } finally {
      if (waiter) this.#waiters.delete(waiter);
    }
  }

  /** Waits up to `ms` for the exit; true when it has exited. */
  async waitExit(ms: number): Promise<boolean> {
    if (this.exit) return true;
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([this.exited.then(() => true), t]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signals the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (this.pid <= 0) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        if (!this.exit) process.kill(this.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; always returns within about graceMs + 2 s. */
  async stop(graceMs = 2000): Promise<void> {
    this.#child.stdin?.end();
    if (!this.exit) {
      this.signal('SIGTERM');
      if (!(await this.waitExit(graceMs))) {
        this.signal('SIGKILL');
        await this.waitExit(2000);
      }
    }
    // The group may hold children that outlived their parent.
    this.signal('SIGKILL');
    this.#log?.end();
  }

  /** SIGKILL the group now (for exit handlers). */
  killSync(): void {
    this.signal('SIGKILL');
  }
}

/** The result of {@link Scope.run}. */
export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
}

type AsyncHook = () => Promise<void> | void;

const liveScopes = new Set<Scope>();

/** A set of processes and cleanups that end together. */
export class Scope {
  /** Name for messages. */
  readonly name: string;
  /** Where child logs go (a folder), if anywhere. */
  readonly logDir: string | undefined;
  readonly #procs = new Set<Proc>();
  readonly #hooks: { async: AsyncHook; sync?: () => void }[] = [];
  #closed = false;

  constructor(name: string, logDir?: string) {
    this.name = name;
    this.logDir = logDir;
    liveScopes.add(this);
  }

  /** Starts a process that this scope will stop. */
  spawn(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
    if (this.#closed) throw new Error(`scope ${this.name} is closed`);
    const logFile = opts.logFile ?? (this.logDir ? `${this.logDir}/${safeName(name)}.log` : undefined);
    const proc = new Proc(name, cmd, args, { ...opts, logFile });
    this.#procs.add(proc);
    return proc;
  }

  /** Runs a command to completion, killing it after `timeoutMs`. */
  async run(
    name: string,
    cmd: string,
    args: string[],
    opts: SpawnOptions & { timeoutMs: number },
  ): Promise<RunResult> {
    const proc = this.spawn(name, cmd, args, { keep: 4 * 1024 * 1024, ...opts });
    if (!(await proc.waitExit(opts.timeoutMs))) {
      await proc.stop(500);
      throw new TimeoutError(`${name} did not finish within ${fmtMs(opts.timeoutMs)}: ${proc.tail()}`);
    }
    await sleep(20); // let the pipes drain after 'exit'
    this.#procs.delete(proc);
    const exit = proc.exit ?? { code: null, signal: null };
    return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
  }

  /** Registers a cleanup (run last-in first-out); `sync` is what to do instead in an exit handler. */
  defer(hook: AsyncHook, sync?: () => void): void {
    this.#hooks.push({ async: hook, sync });
  }

  /** Registers a temporary folder for removal. */
  deferRemove(dir: string): void {
    const rm = () => rmSync(dir, { recursive: true, force: true });
    this.defer(rm, rm);
  }

  /** Runs the cleanups, then stops every process still running; bounded. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const hook of this.#hooks.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(hook.async), 10_000, `cleanup in ${this.name}`);
      } catch (err) {
        process.stderr.write(`bench: cleanup in ${this.name}: ${errorMessage(err)}\n`);
      }
    }
    await Promise.all([...this.#procs].map((p) => p.stop(1500)));
    liveScopes.delete(this);
  }

  /** Kills everything at once, synchronously (for exit handlers). */
  killSync(): void {
    for (const p of this.#procs) p.killSync();
    for (const hook of this.#hooks.reverse()) {
      try {
        hook.sync?.();
      } catch {
        // best effort at exit
      }
    }
    this.#hooks.length = 0;
    this.#closed = true;
    liveScopes.delete(this);
  }
}

/** Closes every scope still open (Ctrl-C, error). */
export async function closeAllScopes(): Promise<void> {
  await Promise.all([...liveScopes].map((s) => s.close()));
}

/** Kills every process of every open scope now. */
export function killAllScopesSync(): void {
  for (const s of [...liveScopes]) s.killSync();
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}

// ---- /proc readers -------------------------------------------------------------------------------

let clkTck: number | undefined;

/** Clock ticks per second for /proc/PID/stat times. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck =
        Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** VmRSS of a process in KiB, or undefined when it is gone. */
export function readRssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return undefined;
  }
}

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields start after the last ')'.
    return text
      .slice(text.lastIndexOf(')') + 2)
      .trim()
      .split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in seconds, or undefined when it is gone. */
export function readCpuSeconds(pid: number): number | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  // After the comm: [0] state, [1] ppid, ... [11] utime, [12] stime (fields 14 and 15 of proc(5)).
  return (Number(f[11]) + Number(f[12])) / clockTicks();
}

/** The command name of a process. */
export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** All descendants of `root` (not `root` itself), from a scan of /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** CPU seconds of each pid, for a before/after difference. */
export function cpuSnapshot(pids: number[]): Map<number, number> {
  const snap = new Map<number, number>();
  for (const pid of pids) {
    const s = readCpuSeconds(pid);
    if (s !== undefined) snap.set(pid, s);
  }
  return snap;
}

/** CPU seconds spent between two snapshots (a pid new in `after` counts from zero). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, s] of after) total += s - (before.get(pid) ?? 0);
  return total;
}

/** True while a process exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  const f = statFields(pid);
  return f !== undefined && f[0] !== 'Z';
}

const nofileCache = new Map<number, number>();

/** The open-file limit a child spawned with `nofile: wanted` really gets (root may still be capped). */
export function effectiveNofile(wanted: number): number {
  let got = nofileCache.get(wanted);
  if (got === undefined) {
    try {
      const script = `ulimit -n ${wanted} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ulimit -n`;
      got = Number(execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8', timeout: 5000 }).trim()) || 0;
    } catch {
      got = 0;
    }
    nofileCache.set(wanted, got);
  }
  return got;
}
