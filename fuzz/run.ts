/**
 * `npm run fuzz`: the fuzzing campaign. In-process targets run in worker threads (one per target, a
 * watchdog terminates a worker whose case never returns), then the live server campaign runs
 * mutated handshakes into a real server over loopback TCP while a legitimate client keeps using it.
 * Prints the seed, the figures of every target, and exits 1 on any finding (crash, non-coded error,
 * broken property, hang, leak, server down, legitimate client failing), 3 when the only errors were
 * the fuzzer's own (harness errors: a bug in fuzz/, reported apart from the findings in mtt).
 *
 *   npm run fuzz -- [--seed N] [--iterations N] [--handshakes N] [--seconds S] [--target a,b]
 *                   [--jobs N] [--concurrency N] [--out DIR] [--json FILE]
 *   npm run fuzz -- --replay FILE            re-run a saved finding
 *   npm run fuzz -- --target T --seed S --case N   re-run one generated case (T may be live-server
 *                                                  or live-session)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { describeError } from './lib/outcome.js';
import { fmtInt, fmtMiB, saveFinding, table } from './lib/report.js';
import { caseInput, type Finding, findingOf, runCase } from './lib/runner.js';
import { fromJson, type Target, toJson } from './lib/target.js';
import type { WorkerResult, WorkerTask } from './lib/worker.js';
import { TARGETS, targetByName } from './targets/index.js';

const LIVE = 'live-server';
const SESSION = 'live-session';

/** Command-line options. */
export interface FuzzOptions {
  seed: number;
  iterations: number;
  handshakes: number;
  seconds: number | undefined;
  targets: string[];
  jobs: number;
  concurrency: number;
  out: string;
  json: string | undefined;
  replay: string | undefined;
  caseIndex: number | undefined;
}

const USAGE = `usage: npm run fuzz -- [--seed N] [--iterations N] [--handshakes N] [--seconds S]
                     [--target ${[...TARGETS.map((t) => t.name), LIVE].join(',')}]
                     [--jobs N] [--concurrency N] [--out DIR] [--json FILE]
       npm run fuzz -- --replay FILE
       npm run fuzz -- --target NAME --seed N --case INDEX   (NAME may also be ${SESSION})`;

function parseArgs(argv: string[]): FuzzOptions {
  const o: FuzzOptions = {
    seed: (Math.random() * 0x1_0000_0000) >>> 0,
    iterations: 1_100_000,
    handshakes: 200_000,
    seconds: undefined,
    targets: [...TARGETS.map((t) => t.name), LIVE],
    jobs: Math.max(1, Math.min(2, availableParallelism())),
    concurrency: 40,
    out: 'fuzz-findings',
    json: undefined,
    replay: undefined,
    caseIndex: undefined,
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0)
      throw new Error(`${flag} needs a number, got ${v ?? 'nothing'}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '--seed':
        o.seed = num(a, v) >>> 0;
        i++;
        break;
      case '--iterations':
        o.iterations = Math.floor(num(a, v));
        i++;
        break;
      case '--handshakes':
        o.handshakes = Math.floor(num(a, v));
        i++;
        break;
      case '--seconds':
        o.seconds = num(a, v);
        i++;
        break;
      case '--target':
        o.targets = (v ?? '').split(',').filter(Boolean);
        for (const t of o.targets) if (t !== LIVE && t !== SESSION) targetByName(t);
        i++;
        break;
      case '--jobs':
        o.jobs = Math.max(1, Math.floor(num(a, v)));
        i++;
        break;
      case '--concurrency':
        o.concurrency = Math.max(1, Math.floor(num(a, v)));
        i++;
        break;
      case '--out':
        o.out = v ?? o.out;
        i++;
        break;
      case '--json':
        o.json = v;
        i++;
        break;
      case '--replay':
        o.replay = v;
        i++;
        break;
      case '--case':
        o.caseIndex = Math.floor(num(a, v));
        i++;
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}

/** How a worker ended: its result, or the case it was running when it was lost, and why. */
interface WorkerOutcome {
  result?: WorkerResult;
  lostAt?: number;
  why?: string;
  /** The worker's uncaught error (its class and stack survive the thread boundary). */
  err?: Error;
}

/** Figures of one in-process target. */
interface TargetStats {
  name: string;
  cases: number;
  findings: number;
  maxCaseMs: number;
  totalMs: number;
  peakRss: number;
  heapGrowth: number | undefined;
  restarts: number;
}

/** The JSON summary (--json), also what the npm test asserts on. */
export interface FuzzSummary {
  seed: number;
  totalInputs: number;
  durationMs: number;
  findings: Array<Pick<Finding, 'kind' | 'target' | 'index' | 'signature' | 'error'> & { file: string }>;
  /** The fuzzer's own errors (kind `harness`): not findings in mtt, but the run did not do its job. */
  harness: FuzzSummary['findings'];
  targets: TargetStats[];
  live: unknown;
  peakRssBytes: number;
}

class Campaign {
  readonly findings: FuzzSummary['findings'] = [];
  readonly harness: FuzzSummary['harness'] = [];
  constructor(readonly opts: FuzzOptions) {}

  record(f: Finding): void {
    const file = saveFinding(this.opts.out, f);
    const entry = {
      kind: f.kind,
      target: f.target,
      index: f.index,
      signature: f.signature,
      error: f.error,
      file,
    };
    if (f.kind === 'harness') {
      this.harness.push(entry);
      process.stdout.write(
        `  FUZZER BUG (not a finding in mtt) in ${f.target} case ${f.index}: ${f.error.slice(0, 300)}\n` +
          `    at ${f.signature.split(' @ ')[1] || '?'}; saved ${file}\n`,
      );
      return;
    }
    this.findings.push(entry);
    process.stdout.write(
      `  FINDING ${f.kind} in ${f.target} case ${f.index}: ${f.error.slice(0, 300)}\n    saved ${file}\n`,
    );
  }

  /** Runs one target in workers until its cases or time are used up; restarts after a lost worker. */
  async runTarget(
    target: Target<unknown>,
    count: number | undefined,
    deadline: number | undefined,
  ): Promise<TargetStats> {
    const stats: TargetStats = {
      name: target.name,
      cases: 0,
      findings: 0,
      maxCaseMs: 0,
      totalMs: 0,
      peakRss: 0,
      heapGrowth: undefined,
      restarts: 0,
    };
    const t0 = Date.now();
    let start = 0;
    while (count === undefined || start < count) {
      if (deadline !== undefined && Date.now() >= deadline) break;
      const progress = new SharedArrayBuffer(12);
      const p = new Int32Array(progress);
      const task: WorkerTask = {
        target: target.name,
        seed: this.opts.seed,
        start,
        count: count === undefined ? undefined : count - start,
        deadline,
        progress,
        keepPerSignature: 3,
        leakBytes: 64 * 2 ** 20,
      };
      const outcome = await new Promise<WorkerOutcome>((resolve) => {
        const w = new Worker(new URL('./lib/worker.js', import.meta.url), {
          workerData: task,
          env: { ...process.env, ...target.env },
        });
        let last = -1;
        let lastChange = Date.now();
        let settled = false;
        const finish = (v: WorkerOutcome) => {
          if (settled) return;
          settled = true;
          clearInterval(watch);
          resolve(v);
        };
        const watch = setInterval(() => {
          const rss = process.memoryUsage.rss();
          if (rss > stats.peakRss) stats.peakRss = rss;
          const done = Atomics.load(p, 0);
          if (done !== last) {
            last = done;
            lastChange = Date.now();
            return;
          }
          // The first case also waits for setup (self-checks, key pools).
          const allowed = target.hangMs + (done === 0 ? 15_000 : 3000);
          if (Atomics.load(p, 2) === 0 && Date.now() - lastChange > allowed) {
            const at = start + Atomics.load(p, 1);
            void w.terminate();
            finish({ lostAt: at, why: `hang: case ${at} did not return within ${allowed} ms` });
          }
        }, 250);
        w.on('message', (m: { type: 'finding'; finding: Finding } | WorkerResult) => {
          if (m.type === 'finding') {
            stats.findings++;
            this.record(m.finding);
          } else finish({ result: m });
        });
        w.on('error', (err) =>
          finish({ lostAt: start + Atomics.load(p, 1), why: `crash: ${describeError(err)}`, err }),
        );
        w.on('exit', (code) =>
          finish({ lostAt: start + Atomics.load(p, 1), why: `worker exited with code ${code}` }),
        );
      });
      if (outcome.result) {
        const r = outcome.result;
        stats.cases += r.cases;
        stats.maxCaseMs = Math.max(stats.maxCaseMs, r.maxCaseMs);
        stats.heapGrowth = r.heapGrowth;
        for (const [sig, n] of Object.entries(r.repeats))
          process.stdout.write(`  (${n} more cases of: ${sig})\n`);
        break;
      }
      // A lost worker: record the case it was running, then go on after it.
      const at = outcome.lostAt ?? start;
      stats.cases += at - start + 1;
      stats.findings++;
      stats.restarts++;
      let input: unknown = null;
      try {
        input = caseInput(target, this.opts.seed, at);
      } catch {
        // The generator itself failed; the finding says so through its error.
      }
      // The worker's own uncaught error keeps its class and stack, so a harness bug is told apart.
      const err = outcome.why?.startsWith('hang')
        ? new (await import('./lib/outcome.js')).HangError(outcome.why)
        : (outcome.err ?? new Error(outcome.why));
      this.record(findingOf(target.name, this.opts.seed, at, input, err));
      start = at + 1;
      if (stats.restarts > 5) break;
    }
    stats.totalMs = Date.now() - t0;
    return stats;
  }
}

async function replay(opts: FuzzOptions): Promise<number> {
  let targetName: string;
  let saved: Finding | undefined;
  let seed = opts.seed;
  let index = opts.caseIndex ?? -1;
  let label: string;
  if (opts.replay) {
    saved = JSON.parse(readFileSync(opts.replay, 'utf8')) as Finding;
    targetName = saved.target;
    seed = saved.seed;
    index = saved.index;
    label = `${opts.replay} (${saved.kind}: ${saved.error.slice(0, 200)})`;
  } else {
    targetName = opts.targets[0] ?? '';
    label = `case ${index} of ${targetName}, seed ${seed}`;
  }
  if (targetName === LIVE || targetName === SESSION) {
    const { replayLive, replaySession } = await import('./live/live.js');
    return targetName === LIVE ? replayLive({ seed, index }) : replaySession({ seed, index });
  }
  const target = targetByName(targetName);
  Object.assign(process.env, target.env);
  await target.setup?.();
  const told = (f: Finding) => {
    process.stdout.write(
      `reproduced: ${f.kind === 'harness' ? "harness (the fuzzer's own bug, not mtt's)" : f.kind}: ${f.error}\n${f.stack}\n`,
    );
    return f.kind === 'harness' ? 3 : 1;
  };
  let input: unknown;
  if (saved && saved.input !== null) input = fromJson(saved.input);
  else {
    // A generated case, or a saved generator error (it has no input): generate it again.
    try {
      input = caseInput(target, seed, index);
    } catch (err) {
      return told({ ...findingOf(target.name, seed, index, null, err), kind: 'harness' });
    }
  }
  process.stdout.write(`replaying ${label}\ninput: ${JSON.stringify(toJson(input)).slice(0, 2000)}\n`);
  const { error, ms } = await runCase(target, input);
  if (error === undefined) {
    process.stdout.write(`no finding: the case ran in ${ms.toFixed(1)} ms and ended as expected\n`);
    return 0;
  }
  return told(findingOf(target.name, seed, index, input, error));
}

async function main(): Promise<number> {
  let opts: FuzzOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (opts.replay || opts.caseIndex !== undefined) return replay(opts);

  const t0 = Date.now();
  const campaign = new Campaign(opts);
  const selected = TARGETS.filter((t) => opts.targets.includes(t.name)) as unknown as Target<unknown>[];
  const withLive = opts.targets.includes(LIVE);
  const weights = selected.reduce((s, t) => s + t.weight, 0);
  // With --seconds, in-process targets share 70 % of the time, the live server the rest.
  const inProcessMs = opts.seconds === undefined ? undefined : opts.seconds * 1000 * (withLive ? 0.7 : 1);
  process.stdout.write(
    `mtt fuzz: seed ${opts.seed}; ${opts.seconds !== undefined ? `${opts.seconds} s` : `${fmtInt(opts.iterations)} in-process inputs${withLive ? `, ${fmtInt(opts.handshakes)} live handshakes` : ''}`}; ` +
      `${opts.jobs} job(s); targets ${opts.targets.join(', ')}\n` +
      `  reproduce this run: npm run fuzz -- --seed ${opts.seed}${opts.seconds !== undefined ? ` --seconds ${opts.seconds}` : ''}${opts.targets.length < TARGETS.length + 1 ? ` --target ${opts.targets.join(',')}` : ''}\n`,
  );

  const stats: TargetStats[] = [];
  const queue = [...selected];
  const phaseStart = Date.now();
  const runNext = async (): Promise<void> => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const share = t.weight / weights;
      const count = inProcessMs === undefined ? Math.max(1, Math.round(opts.iterations * share)) : undefined;
      // With a time budget every target gets the same time: the slow ones (real signatures, real
      // timeouts) would otherwise get a few cases only.
      const slots = Math.min(opts.jobs, selected.length);
      const deadline =
        inProcessMs === undefined ? undefined : Date.now() + (inProcessMs * slots) / selected.length;
      const s = await campaign.runTarget(
        t,
        count,
        deadline === undefined ? undefined : Math.min(deadline, phaseStart + inProcessMs!),
      );
      stats.push(s);
      process.stdout.write(
        `  ${s.name}: ${fmtInt(s.cases)} inputs in ${(s.totalMs / 1000).toFixed(1)} s, ${s.findings} finding(s), slowest case ${s.maxCaseMs.toFixed(1)} ms\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.jobs, Math.max(1, selected.length)) }, runNext));

  let live: Awaited<ReturnType<typeof import('./live/live.js').runLive>> | undefined;
  if (withLive) {
    const { runLive } = await import('./live/live.js');
    live = await runLive({
      seed: opts.seed,
      handshakes: opts.seconds === undefined ? opts.handshakes : undefined,
      deadline: opts.seconds === undefined ? undefined : t0 + opts.seconds * 1000,
      concurrency: opts.concurrency,
      record: (f) => campaign.record(f),
    });
  }

  const order = TARGETS.map((t) => t.name);
  stats.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const total = stats.reduce((s, x) => s + x.cases, 0);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(
    `\n${table(
      ['target', 'inputs', 'findings', 'slowest case', 'seconds', 'inputs/s', 'peak RSS', 'heap growth'],
      stats.map((s) => [
        s.name,
        fmtInt(s.cases),
        String(s.findings),
        `${s.maxCaseMs.toFixed(1)} ms`,
        (s.totalMs / 1000).toFixed(1),
        fmtInt(s.cases / Math.max(0.001, s.totalMs / 1000)),
        fmtMiB(s.peakRss),
        s.heapGrowth === undefined ? 'n/a' : fmtMiB(s.heapGrowth),
      ]),
    )}\n` + `${'total'.padEnd(16)}  ${fmtInt(total)} in-process inputs\n`,
  );
  if (live) process.stdout.write(`${live.text}\n`);
  const durationMs = Date.now() - t0;
  const byKind = new Map<string, number>();
  for (const f of campaign.findings) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  process.stdout.write(
    `seed ${opts.seed}; ${fmtInt(total)} in-process inputs${live ? ` + ${fmtInt(live.handshakes)} live handshakes` : ''} in ${(durationMs / 1000).toFixed(1)} s; ` +
      `peak RSS of this process ${fmtMiB(peakRss)}${live ? `, of the server ${fmtMiB(live.serverPeakRss)}` : ''}; ` +
      `findings: ${campaign.findings.length === 0 ? 'none' : [...byKind].map(([k, n]) => `${n} ${k}`).join(', ')}` +
      `${campaign.harness.length === 0 ? '' : `; FUZZER BUGS: ${campaign.harness.length} harness error(s), not findings in mtt, but the run is incomplete: fix fuzz/ and run again`}\n`,
  );
  if (opts.json) {
    const summary: FuzzSummary = {
      seed: opts.seed,
      totalInputs: total,
      durationMs,
      findings: campaign.findings,
      harness: campaign.harness,
      targets: stats,
      live: live?.summary,
      peakRssBytes: peakRss,
    };
    writeFileSync(opts.json, `${JSON.stringify(summary, null, 2)}\n`);
  }
  return campaign.findings.length > 0 ? 1 : campaign.harness.length > 0 ? 3 : 0;
}

const code = await main();
// Exit at once once everything is written (stdout and files are synchronous here): after the full
// campaign of 2026-12-02 (seed 3532191561) the process printed its summary, then spun a core for
// minutes in Node's exit cleanup (Environment::CleanupHandles) over a TCP handle that never finished
// closing, so `npm run fuzz` never returned.
process.exit(code);
