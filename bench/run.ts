/**
 * `npm run bench`: measures direct, mtt and OpenSSH `ssh -R` (chacha20-poly1305, with and without
 * compression) with the same workloads, on loopback or (`--profile wan`) across an emulated WAN in
 * network namespaces, and prints a markdown table of medians with their ratio to
 * `ssh -R Compression=no`. See docs/BENCHMARKS.md and `npm run bench -- --help`.
 *
 * Every process the harness starts belongs to a Scope; all of them are stopped at the end of each
 * workload, on Ctrl-C, on an error, and (with SIGKILL) at exit. Every wait is bounded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { NetLab } from '../test/system/lib/netns.js';
import { requireWanTools, Wan, type WanSetting } from '../test/system/lib/wan.js';
import { jsonLogCorpus } from './corpus.js';
import { machineFacts } from './lib/machine.js';
import { type Options, type ProfileName, parseOptions, USAGE } from './lib/options.js';
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
  DOC_PROFILES,
  keptAnalysis,
  keptOtherSections,
  keptSection,
  markdownTable,
  profileSection,
  type ResultGrid,
  type RunFacts,
  summarizeAll,
  tableLegend,
} from './lib/report.js';
import { ensureTools, TOOL_PACKAGES, type Tool, type ToolPaths } from './lib/tools.js';
import { loopbackTopology, type Side, type Topology, wanTopology } from './lib/topology.js';
import { addMeasured, checkTable, checkWan, type WanCheck } from './lib/wan-check.js';
import { directPath } from './paths/direct.js';
import { mttPath, mttZstdPath } from './paths/mtt.js';
import { nodeRelayPath } from './paths/node-relay.js';
import { sshPath } from './paths/ssh.js';
import { type BenchPath, PathUnavailable } from './paths/types.js';
import { bulkWorkload } from './workloads/bulk.js';
import { compressibleWorkload } from './workloads/compressible.js';
import { connectionsWorkload, nginxConnectionsWorkload } from './workloads/connections.js';
import { resourcesWorkload } from './workloads/resources.js';
import { rttWorkload } from './workloads/rtt.js';
import type { FigureDef, Workload, WorkloadCtx, WorkloadOutcome } from './workloads/types.js';
import { WAN_WORKLOADS } from './workloads/wan.js';

const HELPER = fileURLToPath(new URL('./helper.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Each profile's paths (in column order) and workloads (in run and row order). `optional` paths run
 * only when `--paths` names them, and then come right after mtt.
 */
const PROFILES: Record<ProfileName, { paths: BenchPath[]; optional: BenchPath[]; workloads: Workload[] }> = {
  loopback: {
    paths: [directPath, mttPath, sshPath(false), sshPath(true), nodeRelayPath],
    optional: [mttZstdPath],
    workloads: [
      bulkWorkload,
      compressibleWorkload,
      connectionsWorkload,
      nginxConnectionsWorkload,
      rttWorkload,
      resourcesWorkload,
    ],
  },
  wan: {
    paths: [directPath, mttPath, sshPath(false), sshPath(true)],
    optional: [mttZstdPath],
    workloads: WAN_WORKLOADS,
  },
};

/** True when `--workloads` names this workload: its id, or the part of its id before ':'. */
function selected(w: Workload, names: string[]): boolean {
  return names.some((n) => w.id === n || w.id.startsWith(`${n}:`));
}

/** The commit measured, with main's when HEAD is main plus commits on top of it. */
function commitFacts(): string {
  const git = (args: string[]) =>
    execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8', timeout: 5000 }).trim();
  try {
    const head = git(['rev-parse', '--short', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? ' with uncommitted changes' : '';
    let main = '';
    try {
      const m = git(['rev-parse', '--short', 'main']);
      if (m !== head) {
        execFileSync('git', ['-C', REPO_ROOT, 'merge-base', '--is-ancestor', 'main', 'HEAD'], {
          timeout: 5000,
        });
        main = ` (main ${m} plus ${git(['rev-list', '--count', 'main..HEAD'])} commits)`;
      } else main = ' (main)';
    } catch {
      // no main branch, or HEAD is not based on it
    }
    return `${head}${main}${dirty}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

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
  env: { opts: Options; tools: ToolPaths; topo: Topology; check: WanCheck | undefined },
  logDir: string,
  run: number,
  abort: Promise<never>,
): Promise<WorkloadOutcome> {
  const { opts, tools, topo } = env;
  const dir = path.join(logDir, `run${run}-${p.name}-${w.id.replace(/[^\w.-]+/g, '_')}`);
  mkdirSync(dir, { recursive: true });
  const scope = new Scope(`${p.name}/${w.id}`, dir);
  const helper = (side: Side, mode: string, args: string[], nofile?: number) =>
    scope.spawn(`helper-${mode}`, process.execPath, [HELPER, mode, ...args], {
      stdin: true,
      nofile,
      netns: topo.netns[side],
    });
  const ctx: WorkloadCtx = {
    path: p,
    opts,
    scope,
    tools,
    topo,
    progress,
    spawnAt: (side, name, cmd, args, o = {}) =>
      scope.spawn(name, cmd, args, { ...o, netns: topo.netns[side] }),
    runAt: (side, name, cmd, args, o) => scope.run(name, cmd, args, { ...o, netns: topo.netns[side] }),
    spawnHelper: (mode, args, nofile) => helper('visitor', mode, args, nofile),
    async startService(mode, args = [], nofile) {
      const proc = helper('service', mode, ['--host', topo.serviceBind, ...args], nofile);
      const line = await proc.waitForLine((l) => l.startsWith('{"ready"'), 15_000, `helper ${mode}`);
      return { proc, port: (JSON.parse(line) as { port: number }).port };
    },
    startPath: (localPort, probe, nofile) =>
      p.start(localPort, { scope, topo, ready: probe, timeoutMs: 30_000, nofile: nofile ?? 4096 }),
  };
  const wan = topo.wan;
  const setting: WanSetting | undefined = w.wan;
  if (setting && !wan) throw new Error(`${w.id} needs the WAN profile`);
  if (setting) await wan?.apply(setting);
  const statsBefore = setting ? await wan?.stats() : undefined;
  const running = w.run(ctx);
  running.catch(() => {}); // when abandoned after a timeout, its late rejection is expected
  try {
    return await withTimeout(Promise.race([running, abort]), w.budgetMs(opts), `${w.title} on ${p.label}`);
  } finally {
    await scope.close();
    if (setting && wan && statsBefore) {
      try {
        addMeasured(env.check, setting, statsBefore, await wan.stats());
      } catch (err) {
        progress(`bench: emulator counters: ${errorMessage(err)}`);
      }
    }
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
  // The commit measured is the one checked out when the run starts (a long run may outlive a rebase).
  const commit = commitFacts();

  const profile = PROFILES[opts.profile];
  const mttAt = profile.paths.indexOf(mttPath) + 1;
  const ALL_PATHS = [...profile.paths.slice(0, mttAt), ...profile.optional, ...profile.paths.slice(mttAt)];
  const paths = opts.paths ? ALL_PATHS.filter((p) => opts.paths?.includes(p.name)) : profile.paths;
  const workloads = opts.workloads
    ? profile.workloads.filter((w) => selected(w, opts.workloads ?? []))
    : profile.workloads;
  for (const name of opts.paths ?? []) {
    if (!ALL_PATHS.some((p) => p.name === name))
      throw new Error(`unknown path ${name} for the ${opts.profile} profile`);
  }
  for (const id of opts.workloads ?? []) {
    if (!profile.workloads.some((w) => selected(w, [id])))
      throw new Error(`unknown workload ${id} for the ${opts.profile} profile`);
  }
  const loads: number[] = [os.loadavg()[0] as number];
  const loadTimer = setInterval(() => loads.push(os.loadavg()[0] as number), 10_000);
  loadTimer.unref();

  // Each profile keeps its own logs: a WAN run must not wipe the loopback run's (nor the other way).
  const logDir = path.join(opts.outDir, opts.profile === 'wan' ? 'logs-wan' : 'logs');
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

  let topo: Topology = loopbackTopology;
  let check: WanCheck | undefined;
  if (opts.profile === 'wan') {
    requireWanTools();
    if (!tools.iperf3 || !tools.ss) {
      throw new Error(`the WAN check needs iperf3 and ss: install with apt-get install -y iperf3 iproute2`);
    }
    const lab = await NetLab.create();
    closeLab = () => lab.close();
    const wan = await Wan.create(lab, { left: 'visitor', right: 'service' });
    topo = wanTopology(wan);
    const settings = workloads.flatMap((w) => (w.wan ? [w.wan] : []));
    const checkScope = new Scope('wan-check', path.join(logDir, 'wan-check'));
    mkdirSync(path.join(logDir, 'wan-check'), { recursive: true });
    try {
      check = await checkWan(topo, settings, { scope: checkScope, tools, opts, progress });
    } finally {
      await checkScope.close();
    }
    process.stdout.write(`\nWAN self-check:\n\n${checkTable(check)}\n\n`);
    if (!check.ok) {
      const msg = 'the emulated link failed its self-check (see the table above)';
      if (!opts.quick && !opts.force) {
        progress(`bench: ${msg}; nothing measured (--force measures anyway)`);
        return 4;
      }
      progress(`bench: ${msg}; measuring anyway (${opts.quick ? '--quick' : '--force'})`);
    }
  }

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
          out = await runWorkload(w, p, { opts, tools, topo, check }, logDir, run, abort);
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
  const extra =
    opts.profile === 'wan' && paths.includes(mttPath) && paths.includes(directPath)
      ? { label: 'mtt ÷ direct', num: 'mtt', den: 'direct' }
      : undefined;
  const table = markdownTable(summaries, paths, opts.runs, extra);
  const legend = tableLegend(
    opts.runs,
    `\`${baseline.label}\``,
    summaries.some((s) => s.cells.get(BASELINE)?.median !== undefined),
  );
  const command = `npm run bench${opts.argv.length ? ` -- ${opts.argv.map(shellQuote).join(' ')}` : ''}`;
  const date = new Date().toISOString();
  const durationSec = (Date.now() - t0) / 1000;

  clearInterval(loadTimer);
  loads.push(os.loadavg()[0] as number);
  const facts: RunFacts = {
    command,
    date,
    durationSec,
    commit,
    load: {
      mean: loads.reduce((a, b) => a + b, 0) / loads.length,
      max: Math.max(...loads),
      samples: loads.length,
    },
  };
  const checkText = check
    ? `Self-check of the emulated link (${[
        `MTU ${check.facts.mtu}`,
        `emulator ${check.facts.emulatorRealtime ? 'SCHED_FIFO' : 'without real-time priority'}`,
        `${check.facts.queue}`,
        `${check.facts.socketBuffers}`,
      ].join('; ')}):\n\n${checkTable(check)}`
    : undefined;
  const json = {
    version: 2,
    profile: opts.profile,
    date,
    command,
    commit: facts.commit,
    load: facts.load,
    durationSeconds: durationSec,
    options: { ...opts, argv: undefined },
    machine,
    baseline: BASELINE,
    corpus: { description: 'JSON log lines', deflate6Ratio: zratio },
    paths: paths.map((p) => ({ name: p.name, label: p.label, unavailable: unavailable.get(p.name) })),
    figures: summaries.map(({ figure, cells }) => ({ ...figure, results: Object.fromEntries(cells) })),
    wanCheck: check,
    runs: runLog,
  };
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(json, null, 2)}\n`);

  process.stdout.write(`\n${checkText ? `${checkText}\n\n` : ''}${legend}\n\n${table}\n\n`);
  progress(
    `bench: ${durationSec.toFixed(0)} s; results in ${path.relative(process.cwd(), opts.out) || opts.out}`,
  );
  if (opts.writeDocs) {
    const doc = path.join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
    mkdirSync(path.dirname(doc), { recursive: true });
    const old = existsSync(doc) ? readFileSync(doc, 'utf8') : '';
    const sections = Object.fromEntries(DOC_PROFILES.map((name) => [name, keptSection(old, name)]));
    sections[opts.profile] = profileSection({ legend, table, facts, before: checkText });
    const others = keptOtherSections(old);
    writeFileSync(doc, benchmarksDoc({ sections, machine, corpus, analysis: keptAnalysis(old), others }));
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

/** Removes the WAN profile's namespaces (also done at exit and on signals by NetLab itself). */
let closeLab: () => Promise<void> = async () => {};

async function finalCleanup(): Promise<void> {
  await withTimeout(closeAllScopes(), 15_000, 'final cleanup').catch(() => killAllScopesSync());
  await withTimeout(closeLab(), 15_000, 'removing the namespaces').catch(() => {});
}

main().then(
  async (code) => {
    await finalCleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    progress(`bench: ${errorMessage(err)}`);
    await finalCleanup();
    process.exit(1);
  },
);
