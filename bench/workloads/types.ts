/** What a workload is and what it gets to run against one path. */
import type { WanSetting } from '../../test/system/lib/wan.js';
import type { Probe } from '../lib/net.js';
import type { Options } from '../lib/options.js';
import type { Proc, RunResult, Scope, SpawnOptions } from '../lib/procs.js';
import type { Tool, ToolPaths } from '../lib/tools.js';
import type { Side, Topology } from '../lib/topology.js';
import type { BenchPath, RunningPath } from '../paths/types.js';

/** One number in the table. */
export interface FigureDef {
  /** Stable key in the JSON. */
  id: string;
  /** Row title. */
  label: string;
  /** Unit shown after the label. */
  unit: string;
  /** Which way is good, for the reader of a ratio. */
  better: 'higher' | 'lower';
}

/** What a workload run produced: values by figure id, and why any figure is missing. */
export interface WorkloadOutcome {
  values: Record<string, number>;
  errors: Record<string, string>;
  /** Raw facts kept in the JSON (tool output figures, error counts, per-process RSS…). */
  details: Record<string, unknown>;
}

/** Everything a workload may use; processes go into `scope` and end with it. */
export interface WorkloadCtx {
  path: BenchPath;
  opts: Options;
  scope: Scope;
  tools: ToolPaths;
  /** Where the visitor and the service run. */
  topo: Topology;
  /** One line of progress on stderr. */
  progress(msg: string): void;
  /** Starts a process on one side (in its namespace, if any); it ends with the scope. */
  spawnAt(side: Side, name: string, cmd: string, args: string[], opts?: SpawnOptions): Proc;
  /** Runs a command on one side to completion. */
  runAt(
    side: Side,
    name: string,
    cmd: string,
    args: string[],
    opts: SpawnOptions & { timeoutMs: number },
  ): Promise<RunResult>;
  /**
   * Starts a bench helper (see helper.ts) as the local service, listening on the topology's service
   * address, and waits for its `ready` line; returns it and its port.
   */
  startService(mode: string, args?: string[], nofile?: number): Promise<{ proc: Proc; port: number }>;
  /** Starts a helper on the visitor side (stdin kept so it exits with us). */
  spawnHelper(mode: string, args: string[], nofile?: number): Proc;
  /** Starts the path to the service's `localPort` and waits until `probe` passes through it. */
  startPath(localPort: number, probe: Probe, nofile?: number): Promise<RunningPath>;
}

/** One measurement, run once per path per run. */
export interface Workload {
  /** Short id, for --workloads and the JSON. */
  id: string;
  /** Title for progress lines. */
  title: string;
  /** Programs it needs besides the path's. */
  needs: Tool[];
  /** The figures it reports, in table order. */
  figures(opts: Options): FigureDef[];
  /** A reason not to run it on this path (its figures are then "n/a"), or undefined. */
  notFor?(path: BenchPath): string | undefined;
  /** Upper bound on one run, after which it is abandoned and its processes killed. */
  budgetMs(opts: Options): number;
  /** The emulated link it runs over (WAN profile), applied before each run. */
  wan?: WanSetting;
  run(ctx: WorkloadCtx): Promise<WorkloadOutcome>;
}

/** An empty outcome to fill. */
export function outcome(): WorkloadOutcome {
  return { values: {}, errors: {}, details: {} };
}

/** Marks every figure of `defs` as failed with `why`, keeping values already set. */
export function failRest(out: WorkloadOutcome, defs: FigureDef[], why: string): void {
  for (const f of defs) if (out.values[f.id] === undefined && !out.errors[f.id]) out.errors[f.id] = why;
}
