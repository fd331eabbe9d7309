/** Turning raw runs into medians, ratios, a markdown table, the JSON file and docs/BENCHMARKS.md. */
import type { BenchPath } from '../paths/types.js';
import type { FigureDef } from '../workloads/types.js';
import type { MachineFacts } from './machine.js';

/** The path every ratio is relative to. */
export const BASELINE = 'ssh';

/** Everything collected for one figure on one path. */
export interface Cell {
  /** One value per successful run. */
  values: number[];
  /** One message per failed run. */
  errors: string[];
  /** Why the figure does not apply to this path (e.g. no tunnel process for direct). */
  na?: string;
  /** Why it was not measured (a missing tool). */
  skipped?: string;
}

/** Medians and spread of a cell. */
export interface CellSummary {
  status: 'ok' | 'partial' | 'failed' | 'n/a' | 'skipped';
  median?: number;
  min?: number;
  max?: number;
  runs: number[];
  /** median / the baseline's median. */
  ratio?: number;
  errors?: string[];
  reason?: string;
}

/** Results by path name, then figure id. */
export type ResultGrid = Map<string, Map<string, Cell>>;

/** The median of values (mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Summarises one cell against the baseline's median. */
export function summarize(cell: Cell | undefined, baseline: number | undefined): CellSummary {
  if (!cell) return { status: 'failed', runs: [], reason: 'not run' };
  if (cell.na) return { status: 'n/a', runs: [], reason: cell.na };
  if (cell.skipped) return { status: 'skipped', runs: [], reason: cell.skipped };
  const errors = [...new Set(cell.errors)];
  if (cell.values.length === 0) return { status: 'failed', runs: [], errors };
  const med = median(cell.values);
  const out: CellSummary = {
    status: cell.errors.length > 0 ? 'partial' : 'ok',
    median: med,
    min: Math.min(...cell.values),
    max: Math.max(...cell.values),
    runs: cell.values,
  };
  if (baseline !== undefined && baseline > 0) out.ratio = med / baseline;
  if (errors.length > 0) out.errors = errors;
  return out;
}

/** A figure with 3 significant digits, thousands separated. */
export function fmtNum(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(2);
}

function fmtRatio(r: number): string {
  return `×${r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}

/** The figures summarised for every path. */
export interface Summary {
  figure: FigureDef;
  cells: Map<string, CellSummary>;
}

/** Summarises the whole grid, figure by figure. */
export function summarizeAll(figures: FigureDef[], paths: BenchPath[], grid: ResultGrid): Summary[] {
  return figures.map((figure) => {
    const base = summarize(grid.get(BASELINE)?.get(figure.id), undefined);
    const cells = new Map<string, CellSummary>();
    for (const p of paths) cells.set(p.name, summarize(grid.get(p.name)?.get(figure.id), base.median));
    return { figure, cells };
  });
}

/** Footnotes: each distinct failure reason once, numbered. */
class Notes {
  readonly list: string[] = [];
  ref(text: string): string {
    let i = this.list.indexOf(text);
    if (i < 0) {
      this.list.push(text);
      i = this.list.length - 1;
    }
    return `[${i + 1}]`;
  }
}

/** The markdown table: a row per figure, a column per path, "median (min–max) ×ratio". */
export function markdownTable(summaries: Summary[], paths: BenchPath[], runs: number): string {
  const notes = new Notes();
  const head = `| Figure | ${paths.map((p) => p.label).join(' | ')} |`;
  const rule = `|---|${paths.map(() => '---:').join('|')}|`;
  const rows = summaries.map(({ figure, cells }) => {
    const tds = paths.map((p) => {
      const c = cells.get(p.name) as CellSummary;
      const why = (c.errors ?? [c.reason ?? '']).map((e) => `${p.label}: ${e}`);
      switch (c.status) {
        case 'n/a':
          return 'n/a';
        case 'skipped':
          return `skipped ${notes.ref(`${p.label}: ${c.reason}`)}`;
        case 'failed':
          return `**failed** ${why.map((w) => notes.ref(w)).join('')}`;
        default: {
          let s = fmtNum(c.median as number);
          if (runs > 1 && c.runs.length > 1) s += ` (${fmtNum(c.min as number)}–${fmtNum(c.max as number)})`;
          if (c.ratio !== undefined) s += ` ${fmtRatio(c.ratio)}`;
          if (c.status === 'partial') s += ` ${why.map((w) => notes.ref(`some runs failed: ${w}`)).join('')}`;
          return s;
        }
      }
    });
    const arrow = figure.better === 'higher' ? '↑' : '↓';
    return `| ${figure.label} (${figure.unit}, ${arrow}) | ${tds.join(' | ')} |`;
  });
  const lines = [head, rule, ...rows];
  if (notes.list.length > 0) {
    lines.push('');
    notes.list.forEach((n, i) => {
      lines.push(`[${i + 1}] ${n.replace(/\s+/g, ' ').slice(0, 500)}  `);
    });
  }
  return lines.join('\n');
}

/** One line on what the table's cells mean. */
export function tableLegend(runs: number, baselineLabel: string, haveBaseline: boolean): string {
  const spread = runs > 1 ? `the median of ${runs} runs with (min–max)` : 'one run';
  const ratio = haveBaseline
    ? `, then the ratio to ${baselineLabel} (×1.00)`
    : ` (no ratios: ${baselineLabel} was not measured)`;
  return `Each cell is ${spread}${ratio}. ↑ higher is better, ↓ lower is better. "n/a": the figure has no meaning for that path.`;
}

/** The "Machine" section as a markdown table. */
export function machineTable(m: MachineFacts): string {
  const rows: [string, string][] = [
    ['CPUs (nproc)', String(m.nproc)],
    ['CPU model', m.cpuModel],
    ['Memory', m.memory],
    ['Kernel', m.kernel],
    ['OS', m.os],
    ['Node.js', m.node],
    ['OpenSSH', m.openssh ?? 'not installed'],
    ['iperf3', m.iperf3 ?? 'not installed'],
    ['wrk', m.wrk ?? 'not installed'],
    ['Open-file limit for children', String(m.nofileLimit)],
  ];
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

/** Markers around the hand-written part of docs/BENCHMARKS.md. */
export const ANALYSIS_START = '<!-- analysis: written by hand, kept by --write-docs -->';
export const ANALYSIS_END = '<!-- end of analysis -->';

/** The hand-written analysis of an existing page, if any. */
export function keptAnalysis(page: string): string | undefined {
  const a = page.indexOf(ANALYSIS_START);
  const b = page.indexOf(ANALYSIS_END);
  return a >= 0 && b > a ? page.slice(a + ANALYSIS_START.length, b) : undefined;
}

/** The contents of docs/BENCHMARKS.md. */
export function benchmarksDoc(p: {
  table: string;
  legend: string;
  machine: MachineFacts;
  command: string;
  date: string;
  durationSec: number;
  corpus: string;
  /** The hand-written analysis kept between the ANALYSIS markers of the previous page. */
  analysis?: string;
}): string {
  return `# Benchmarks

MiniTCPTunnel (\`mtt\`) against the plain loopback connection and OpenSSH's \`ssh -R\`, measured the
same way by one harness (\`bench/run.ts\`). This page is written by the harness
(\`npm run bench -- --write-docs\`); edit the harness, not this page, except between the analysis
markers, which a rewrite keeps.

## Latest results

${p.legend}

${p.table}

${ANALYSIS_START}
${p.analysis?.trim() || '(no analysis yet)'}
${ANALYSIS_END}

Measured ${p.date}, in ${Math.round(p.durationSec)} s, with:

\`\`\`sh
${p.command}
\`\`\`

## Machine

${machineTable(p.machine)}

## What is measured

Every path carries a TCP connection from an external client (connecting to the path's public port on
127.0.0.1) to a local service:

- **direct**: no tunnel; the client connects to the local service itself.
- **mtt**: \`mtt server\` and \`mtt client\` (built CLI, \`dist/src/cli/main.js\`) with one tunnel.
- **ssh -R**: a private \`sshd\` on a high loopback port (own config, host key and authorized_keys in a
  temp folder) and \`ssh -N -R\` with \`-c chacha20-poly1305@openssh.com\`, once with
  \`Compression=no\` (the baseline of every ratio) and once with \`Compression=yes\`.

For each workload the path is started afresh, and it counts as ready once a probe connection has
carried bytes end to end.

1. **Bulk incompressible**: \`iperf3\` (random payload) for the set time; the iperf3 server is the
   local service, the client connects to the public port; once as is (client → service) and once
   with \`-R\` (service → client). Figure: iperf3's received bits per second.
2. **Bulk compressible**: a corpus of JSON log lines generated by the bench (${p.corpus}), pushed
   for the set time by a Node sender to a Node receiver, in both directions. Figure: bytes received
   over the time from first to last byte.
3. **New connections**: \`wrk -c10 -t2 --latency -H 'Connection: close'\` against a Node HTTP server
   with a 3-byte body, so each request is a new tunneled connection. Figures: requests per second,
   latency p50 and p99 as wrk reports them.
4. **RTT**: one established connection, a 64-byte ping-pong against a Node echo server, timed with
   \`process.hrtime\` after a warm-up. Figures: p50 and p99.
5. **Resources**: VmRSS (\`/proc/PID/status\`) summed over the tunnel's processes (mtt: server and
   client; OpenSSH: sshd's per-connection processes and ssh), idle and with the given number of open
   tunneled connections (each proven by a 1-byte echo). **CPU** is utime+stime from
   \`/proc/PID/stat\` of the same processes: over workload 1 divided by the bytes moved (GB = 10⁹
   bytes), and over workload 3 divided by the requests completed.

Everything runs on one machine, so the load generators compete with the tunnel for the same cores:
the figures compare paths with one another on this machine, not with other machines.

## Running it

\`\`\`sh
npm run bench                     # 3 runs of every path, about 20 minutes
npm run bench -- --quick          # every path once, briefly (CI smoke test; assert no timings)
npm run bench -- --runs 5 --paths ssh,mtt --workloads bulk,rtt
npm run bench -- --write-docs     # also rewrite this page
\`\`\`

\`--out FILE\` sets the JSON results file (default \`.bench-out/bench-results.json\`); child process
logs go to \`.bench-out/logs/\`. OpenSSH, iperf3 and wrk are installed with apt-get when missing and
running as root; otherwise the harness prints what to install and reports those paths as skipped.
\`npm run bench -- --help\` lists every option.
`;
}
