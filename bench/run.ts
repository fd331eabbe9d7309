/**
 * `npm run bench`: measures direct loopback, mtt and OpenSSH `ssh -R` (chacha20-poly1305, with and
 * without compression) with the same workloads, and prints a markdown table of medians with their
 * ratio to `ssh -R Compression=no`. See docs/BENCHMARKS.md and `npm run bench -- --help`.
 *
 * Every process the harness starts belongs to a Scope; all of them are stopped at the end of each
 * workload, on Ctrl-C, on an error, and (with SIGKILL) at exit. Every wait is bounded.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { jsonLogCorpus } from './corpus.js';
import { machineFacts } from './lib/machine.js';
import { type Options, parseOptions, USAGE } from './lib/options.js';
import {
  closeAllScopes,
  errorMessage,
  fmtMs,
  killAllScopesSync,
  Scope,
  sleep,
  TimeoutError,
  withTimeout,
} from './lib/procs.js';
import {
  BASELINE,
  benchmarksDoc,
  type Cell,
  keptAnalysis,
  markdownTable,
  type ResultGrid,
  summarizeAll,
  tableLegend,
} from './lib/report.js';
import { ensureTools, TOOL_PACKAGES, type Tool, type ToolPaths } from './lib/tools.js';
import { directPath } from './paths/direct.js';
import { mttPath } from './paths/mtt.js';
import { nodeRelayPath } from './paths/node-relay.js';
import { sshPath } from './paths/ssh.js';
import { type BenchPath, PathUnavailable } from './paths/types.js';
import { bulkWorkload } from './workloads/bulk.js';
import { compressibleWorkload } from './workloads/compressible.js';
import { connectionsWorkload } from './workloads/connections.js';
import { resourcesWorkload } from './workloads/resources.js';
import { rttWorkload } from './workloads/rtt.js';
import type { FigureDef, Workload, WorkloadCtx, WorkloadOutcome } from './workloads/types.js';

const HELPER = fileURLToPath(new URL('./helper.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every path, in column order. */
const ALL_PATHS: BenchPath[] = [directPath, mttPath, sshPath(false), sshPath(true), nodeRelayPath];
/** Every workload, in run and row order. */
const ALL_WORKLOADS: Workload[] = [
  bulkWorkload,
  compressibleWorkload,
  connectionsWorkload,
  rttWorkload,
  resourcesWorkload,
];

function progress(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Ctrl-C, SIGTERM and crashes stop everything the harness started. */
function installCleanupHandlers(): void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      killAllScopesSync();
      process.exit(130);
    }
    stopping = true;
    progress(`\nbench: ${sig}, stopping every process started (again to force)…`);
    withTimeout(closeAllScopes(), 15_000, 'cleanup')
      .catch(() => killAllScopesSync())
      .finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', () => killAllScopesSync());
  const crash = (err: unknown) => {
    progress(`bench: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAllScopesSync();
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

/** Runs one workload on one path in its own scope, bounded by the workload's budget. */
async function runWorkload(
  w: Workload,
  p: BenchPath,
  opts: Options,
  tools: ToolPaths,
  logDir: string,
  run: number,
  abort: Promise<never>,
): Promise<WorkloadOutcome> {
  const dir = path.join(logDir, `run${run}-${p.name}-${w.id}`);
  mkdirSync(dir, { recursive: true });
  const scope = new Scope(`${p.name}/${w.id}`, dir);
  const ctx: WorkloadCtx = {
    path: p,
    opts,
    scope,
    tools,
    progress,
    spawnHelper: (mode, args, nofile) =>
      scope.spawn(`helper-${mode}`, process.execPath, [HELPER, mode, ...args], { stdin: true, nofile }),
    async startService(mode, args = [], nofile) {
      const proc = ctx.spawnHelper(mode, args, nofile);
      const line = await proc.waitForLine((l) => l.startsWith('{"ready"'), 15_000, `helper ${mode}`);
      return { proc, port: (JSON.parse(line) as { port: number }).port };
    },
    startPath: (localPort, probe, nofile) =>
      p.start(localPort, { scope, ready: probe, timeoutMs: 30_000, nofile: nofile ?? 4096 }),
  };
  const running = w.run(ctx);
  running.catch(() => {}); // when abandoned after a timeout, its late rejection is expected
  try {
    return await withTimeout(Promise.race([running, abort]), w.budgetMs(opts), `${w.title} on ${p.label}`);
  } finally {
    await scope.close();
  }
}

function cellOf(grid: ResultGrid, pathName: string, id: string): Cell {
  let byFig = grid.get(pathName);
  if (!byFig) {
    byFig = new Map();
    grid.set(pathName, byFig);
  }
  let cell = byFig.get(id);
  if (!cell) {
    cell = { values: [], errors: [] };
    byFig.set(id, cell);
  }
  return cell;
}

function summaryLine(defs: FigureDef[], out: WorkloadOutcome): string {
  return defs
    .map((f) => {
      const v = out.values[f.id];
      if (v !== undefined) return `${f.id}=${v.toPrecision(3)}`;
      if (out.errors[f.id]) return `${f.id}=FAILED`;
      return undefined;
    })
    .filter(Boolean)
    .join(' ');
}

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const opts = parsed;
  installCleanupHandlers();
  const t0 = Date.now();

  const paths = opts.paths ? ALL_PATHS.filter((p) => opts.paths?.includes(p.name)) : ALL_PATHS;
  const workloads = opts.workloads
    ? ALL_WORKLOADS.filter((w) => opts.workloads?.includes(w.id))
    : ALL_WORKLOADS;
  for (const name of opts.paths ?? []) {
    if (!ALL_PATHS.some((p) => p.name === name)) throw new Error(`unknown path ${name}`);
  }
  for (const id of opts.workloads ?? []) {
    if (!ALL_WORKLOADS.some((w) => w.id === id)) throw new Error(`unknown workload ${id}`);
  }

  const logDir = path.join(opts.outDir, 'logs');
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });

  const tools = await ensureTools(opts.install, (m) => progress(`bench: ${m}`));
  const machine = machineFacts(tools);
  const fdsWanted = 2 * Math.max(...opts.conns) + 256;
  if (workloads.includes(resourcesWorkload) && paths.includes(mttPath) && machine.nofileLimit < fdsWanted) {
    progress(
      `bench: the open-file limit is ${machine.nofileLimit} and cannot be raised here; ${Math.max(...opts.conns)} connections through mtt need about ${fdsWanted}`,
    );
  }
  const installHint = (missing: Tool[]) => {
    const pkgs = [...new Set(missing.map((t) => TOOL_PACKAGES[t]))].join(' ');
    return `${missing.join(', ')} missing: install with apt-get install -y ${pkgs}`;
  };

  const sample = jsonLogCorpus(4 * 1024 * 1024);
  const zratio = sample.length / deflateSync(sample, { level: 6 }).length;
  const corpus = `deflate level 6 shrinks it ${zratio.toFixed(1)}×`;

  let abortReject: (e: Error) => void = () => {};
  const abort = new Promise<never>((_, reject) => {
    abortReject = reject;
  });
  abort.catch(() => {});
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    progress(`bench: the whole bench exceeded --timeout ${opts.timeoutSec} s; abandoning the rest`);
    abortReject(new TimeoutError(`bench exceeded --timeout ${opts.timeoutSec} s`));
  }, opts.timeoutSec * 1000);

  const grid: ResultGrid = new Map();
  const unavailable = new Map<string, string>();
  const runLog: Record<string, unknown>[] = [];
  progress(
    `bench: ${opts.runs} run(s) × ${paths.length} path(s) × ${workloads.length} workload(s), ${opts.seconds} s per timed workload`,
  );

  for (let run = 1; run <= opts.runs; run++) {
    for (const p of paths) {
      for (const w of workloads) {
        const defs = w.figures(opts);
        const set = (fn: (c: Cell) => void) => {
          for (const f of defs) fn(cellOf(grid, p.name, f.id));
        };
        const na = w.notFor?.(p);
        const missing = [...p.needs, ...w.needs].filter((t) => !tools[t]);
        if (na) {
          set((c) => {
            c.na = na;
          });
          continue;
        }
        if (missing.length > 0) {
          const why = installHint(missing);
          set((c) => {
            c.skipped = why;
          });
          if (run === 1) progress(`[run ${run}] ${p.name} ${w.id}: skipped, ${why}`);
          continue;
        }
        const down = unavailable.get(p.name);
        if (down || timedOut) {
          set((c) => c.errors.push(down ?? 'not run: the bench timed out'));
          continue;
        }
        const started = Date.now();
        progress(`[run ${run}/${opts.runs}] ${p.name}: ${w.title}…`);
        let out: WorkloadOutcome;
        try {
          out = await runWorkload(w, p, opts, tools, logDir, run, abort);
        } catch (err) {
          const msg = errorMessage(err);
          if (err instanceof PathUnavailable) unavailable.set(p.name, msg);
          out = { values: {}, errors: Object.fromEntries(defs.map((f) => [f.id, msg])), details: {} };
        }
        for (const f of defs) {
          const c = cellOf(grid, p.name, f.id);
          const v = out.values[f.id];
          if (v !== undefined && Number.isFinite(v)) c.values.push(v);
          else if (out.errors[f.id]) c.errors.push(out.errors[f.id] as string);
          else if (p.name === 'direct') c.na = 'no tunnel processes';
          else c.errors.push('no value');
        }
        const took = Date.now() - started;
        const failed = Object.entries(out.errors);
        progress(`  ${summaryLine(defs, out)} (${fmtMs(took)})`);
        for (const [id, msg] of failed) progress(`  ${id}: ${msg}`);
        runLog.push({ run, path: p.name, workload: w.id, ms: took, ...out });
        await sleep(opts.quick ? 50 : 300); // let sockets and processes wind down
      }
    }
  }
  clearTimeout(watchdog);

  const figures = workloads.flatMap((w) => w.figures(opts));
  const summaries = summarizeAll(figures, paths, grid);
  const baseline = ALL_PATHS.find((p) => p.name === BASELINE) as BenchPath;
  const table = markdownTable(summaries, paths, opts.runs);
  const legend = tableLegend(
    opts.runs,
    `\`${baseline.label}\``,
    summaries.some((s) => s.cells.get(BASELINE)?.median !== undefined),
  );
  const command = `npm run bench${opts.argv.length ? ` -- ${opts.argv.map(shellQuote).join(' ')}` : ''}`;
  const date = new Date().toISOString();
  const durationSec = (Date.now() - t0) / 1000;

  const json = {
    version: 1,
    date,
    command,
    durationSeconds: durationSec,
    options: { ...opts, argv: undefined },
    machine,
    baseline: BASELINE,
    corpus: { description: 'JSON log lines', deflate6Ratio: zratio },
    paths: paths.map((p) => ({ name: p.name, label: p.label, unavailable: unavailable.get(p.name) })),
    figures: summaries.map(({ figure, cells }) => ({ ...figure, results: Object.fromEntries(cells) })),
    runs: runLog,
  };
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(json, null, 2)}\n`);

  process.stdout.write(`\n${legend}\n\n${table}\n\n`);
  progress(
    `bench: ${durationSec.toFixed(0)} s; results in ${path.relative(process.cwd(), opts.out) || opts.out}`,
  );
  if (opts.writeDocs) {
    const doc = path.join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
    mkdirSync(path.dirname(doc), { recursive: true });
    const analysis = existsSync(doc) ? keptAnalysis(readFileSync(doc, 'utf8')) : undefined;
    writeFileSync(
      doc,
      benchmarksDoc({ table, legend, machine, command, date, durationSec, corpus, analysis }),
    );
    progress(`bench: wrote ${path.relative(process.cwd(), doc)}`);
  }

  const failures = summaries.flatMap(({ figure, cells }) =>
    [...cells]
      .filter(([, c]) => c.status === 'failed' || c.status === 'partial')
      .map(([p]) => `${p}:${figure.id}`),
  );
  if (failures.length > 0)
    progress(`bench: ${failures.length} figure(s) failed or partly failed: ${failures.join(', ')}`);
  for (const [name, why] of unavailable) progress(`bench: path ${name} unavailable: ${why}`);
  if (timedOut) return 3;
  return opts.strict && failures.length > 0 ? 2 : 0;
}

main().then(
  async (code) => {
    await withTimeout(closeAllScopes(), 15_000, 'final cleanup').catch(() => killAllScopesSync());
    process.exit(code);
  },
  async (err: unknown) => {
    progress(`bench: ${errorMessage(err)}`);
    await withTimeout(closeAllScopes(), 15_000, 'final cleanup').catch(() => killAllScopesSync());
    process.exit(1);
  },
);
