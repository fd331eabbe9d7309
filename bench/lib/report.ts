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

/** A last column: the ratio of two paths' medians (e.g. mtt ÷ direct). */
export interface ExtraRatio {
  label: string;
  num: string;
  den: string;
}

/** The markdown table: a row per figure, a column per path, "median (min–max) ×ratio". */
export function markdownTable(
  summaries: Summary[],
  paths: BenchPath[],
  runs: number,
  extra?: ExtraRatio,
): string {
  const notes = new Notes();
  const extraHead = extra ? ` ${extra.label} |` : '';
  const head = `| Figure | ${paths.map((p) => p.label).join(' | ')} |${extraHead}`;
  const rule = `|---|${paths.map(() => '---:').join('|')}|${extra ? '---:|' : ''}`;
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
    if (extra) {
      const n = cells.get(extra.num)?.median;
      const d = cells.get(extra.den)?.median;
      tds.push(n !== undefined && d !== undefined && d > 0 ? fmtRatio(n / d) : '—');
    }
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
    ['nginx', m.nginx ?? 'not installed'],
    ['Open-file limit for children', String(m.nofileLimit)],
  ];
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

/** Markers around the hand-written part of docs/BENCHMARKS.md. */
export const ANALYSIS_START = '<!-- analysis: written by hand, kept by --write-docs -->';
export const ANALYSIS_END = '<!-- end of analysis -->';

/** The profiles the page has a results section for, in page order. */
export const DOC_PROFILES = ['loopback', 'wan'] as const;

function sectionMarkers(profile: string): [string, string] {
  return [`<!-- results:${profile}: written by --write-docs -->`, `<!-- end of results:${profile} -->`];
}

function between(page: string, start: string, end: string): string | undefined {
  const a = page.indexOf(start);
  const b = page.indexOf(end);
  return a >= 0 && b > a ? page.slice(a + start.length, b) : undefined;
}

/** The hand-written analysis of an existing page, if any. */
export function keptAnalysis(page: string): string | undefined {
  return between(page, ANALYSIS_START, ANALYSIS_END);
}

/**
 * Sections other tools keep on the page (the soak's, say), each between its own markers
 * `<!-- NAME: … -->` and `<!-- end of NAME -->`, heading included: a rewrite keeps them verbatim, in
 * their order, after the analysis. NAME is letters, digits, '.', '_' or '-'.
 */
export function keptOtherSections(page: string): string[] {
  const found: string[] = [];
  for (const m of page.matchAll(/<!-- ([\w.-]+)(?::[^>]*)? -->[\s\S]*?<!-- end of \1 -->/g)) {
    if (m[1] !== 'analysis' && m[1] !== 'results') found.push(m[0]);
  }
  return found;
}

/** The results section of one profile on an existing page, if any. */
export function keptSection(page: string, profile: string): string | undefined {
  const [a, b] = sectionMarkers(profile);
  return between(page, a, b);
}

/** Facts about one run for its section: when, on what, under which load. */
export interface RunFacts {
  command: string;
  date: string;
  durationSec: number;
  /** The commit measured (HEAD), and main's commit when HEAD is based on it. */
  commit: string;
  /** 1-minute load average seen while the bench ran: mean and max of samples. */
  load: { mean: number; max: number; samples: number };
}

/** The results section of one profile (what --write-docs puts between that profile's markers). */
export function profileSection(p: {
  legend: string;
  table: string;
  facts: RunFacts;
  before?: string;
}): string {
  const f = p.facts;
  return `${p.before ? `${p.before.trim()}\n\n` : ''}${p.legend}

${p.table}

Measured ${f.date} at commit ${f.commit}, in ${Math.round(f.durationSec)} s.
The 1-minute load average was ${f.load.mean.toFixed(2)} on average and ${f.load.max.toFixed(2)} at most
(other work on the machine competes for its cores). The command:

\`\`\`sh
${f.command}
\`\`\``;
}

/** The contents of docs/BENCHMARKS.md. */
export function benchmarksDoc(p: {
  /** The generated results section of each profile (from this run or kept from the page). */
  sections: Partial<Record<(typeof DOC_PROFILES)[number], string>>;
  machine: MachineFacts;
  corpus: string;
  /** The hand-written analysis kept between the ANALYSIS markers of the previous page. */
  analysis?: string;
  /** Other tools' sections of the previous page ({@link keptOtherSections}). */
  others?: string[];
}): string {
  const section = (profile: (typeof DOC_PROFILES)[number]) => {
    const [a, b] = sectionMarkers(profile);
    const flag = profile === 'wan' ? ' -- --profile wan' : '';
    const body = p.sections[profile]?.trim() || `(not measured yet: \`npm run bench${flag} --write-docs\`)`;
    return `${a}\n${body}\n${b}`;
  };
  return `# Benchmarks

MiniTCPTunnel (\`mtt\`) against the direct connection and OpenSSH's \`ssh -R\`, measured the same way
by one harness (\`bench/run.ts\`) in two settings: everything on this machine's loopback, and across
an emulated WAN between network namespaces. This page is written by the harness
(\`npm run bench -- [--profile wan] --write-docs\` rewrites that profile's results and keeps the
other's); edit the harness, not this page, except between the analysis markers, which a rewrite keeps.
A section of another tool goes between its own markers, HTML comments that read \`NAME: …\` and
\`end of NAME\` (heading included); a rewrite keeps it after the analysis.

## Loopback

${section('loopback')}

## Emulated WAN

${section('wan')}

${ANALYSIS_START}
${p.analysis?.trim() || '(no analysis yet)'}
${ANALYSIS_END}
${(p.others ?? []).map((o) => `\n${o.trim()}\n`).join('')}
## Machine

${machineTable(p.machine)}

## What is measured on loopback

Every path carries a TCP connection from an external client (connecting to the path's public port on
127.0.0.1) to a local service:

- **direct**: no tunnel; the client connects to the local service itself.
- **mtt**: \`mtt server\` and \`mtt client\` (built CLI, \`dist/src/cli/main.js\`) with one tunnel.
- **ssh -R**: a private \`sshd\` on a high loopback port (own config, host key and authorized_keys in a
  temp folder) and \`ssh -N -R\` with \`-c chacha20-poly1305@openssh.com\`, once with
  \`Compression=no\` (the baseline of every ratio) and once with \`Compression=yes\`.
- **plain Node relay ×2**: a reference, not a tunnel: two Node processes that only pipe sockets.

For each workload the path is started afresh, and it counts as ready once a probe connection has
carried bytes end to end.

1. **Bulk incompressible**: \`iperf3\` (random payload) for the set time; the iperf3 server is the
   local service, the client connects to the public port; once as is (client → service) and once
   with \`-R\` (service → client). Figure: iperf3's received bits per second.
2. **Bulk compressible**: a corpus of JSON log lines generated by the bench (${p.corpus}), pushed
   for the set time by a Node sender to a Node receiver, in both directions. Figure: bytes received
   over the time from first to last byte.
3. **New connections**: \`wrk -c10 -t2 --latency -H 'Connection: close'\`, so each request is a new
   tunneled connection, against two HTTP targets with a 3-byte body: a Node HTTP server, and nginx
   (Debian's package; a private instance with one worker, \`return 200\`). Figures: requests per
   second, latency p50 and p99 as wrk reports them.
4. **RTT**: one established connection, a 64-byte ping-pong against a Node echo server, timed with
   \`process.hrtime\` after a warm-up. Figures: p50 and p99.
5. **Resources**: VmRSS (\`/proc/PID/status\`) summed over the tunnel's processes (mtt: server and
   client; OpenSSH: sshd's per-connection processes and ssh), idle and with the given number of open
   tunneled connections (each proven by a 1-byte echo). **CPU** is utime+stime from
   \`/proc/PID/stat\` of the same processes: over workload 1 divided by the bytes moved (GB = 10⁹
   bytes), and over workload 3 divided by the requests completed.

Everything runs on one machine, so the load generators compete with the tunnel for the same cores:
the figures compare paths with one another on this machine, not with other machines.

## What is measured across the emulated WAN

Three network namespaces made for the run (test/system/lib/netns.ts and wan.ts; the host's network
is not touched):

\`\`\`
 visitor side 10.77.1.2           router                 10.77.2.2 service side
 ┌──────────────────────┐   ┌──────────────────┐   ┌───────────────────────────┐
 │ visitor (iperf3 -c,  │   │ policy routing → │   │ mtt client / ssh -R       │
 │   wrk, helpers)      ├───┤ TUN → emulator → ├───┤   (dials 127.0.0.1)       │
 │ mtt server / sshd    │   │ tbf on each veth │   │ service (iperf3 -s, Node  │
 │   (public port on    │   │                  │   │   HTTP, JSON stream)      │
 │    127.0.0.1)        │   └──────────────────┘   └───────────────────────────┘
 └──────────────────────┘
\`\`\`

The visitor and the tunnel's server share the visitor side; the tunnel's client and the service
share the service side. So every path crosses the WAN exactly once: **direct** is the visitor
dialling the service's own address across the WAN; **mtt** and **ssh -R** are the visitor dialling
the tunnel server's public port on its own side, the tunnel carrying the bytes across the WAN, and
the tunnel client dialling the service on its side. The plain Node relay is not run here.

- **Delay and loss**: \`test/system/lib/wan-emulator.c\`, compiled with gcc when the run starts, reads
  every packet the router's policy routing sends into a TUN device, holds it for half the RTT (drops
  a seeded-random fraction for loss, in each direction) and writes it back; the kernel forwards it on.
  It runs SCHED_FIFO so a busy machine delays it less. **Rate**: tbf on the router's two veths (the
  queue, half the RTT at the rate, is the bottleneck buffer). MTU 9000 on every link. The end hosts'
  TCP buffer limits are raised to 64 MiB so one connection can fill 1 Gbit/s × 100 ms, and receive
  buffers start at 1 MiB: with Debian's 128 KiB, about a third of new connections on this kernel never
  started receive autotuning and stayed at one ~84 KB window per round trip for seconds.
- **Congestion control**: set on the end hosts' routes across the router (\`ip route … congctl\`),
  which applies to every TCP socket that crosses, the tunnels' own included (this kernel's namespace
  default is BBR and cannot be changed in a child namespace); iperf3 also gets \`-C\`. The self-check
  reads it back with \`ss -ti\`. Cubic everywhere, and BBR in the two rows the issue measured with it.
- **Self-check before measuring**: for every link setting, ping's RTT within 2 % of the set RTT; for
  every lossless setting, direct iperf3 within 10 % of the set rate, with the emulator's CPU read
  meanwhile. A failed check stops a full run (\`--force\` measures anyway). After the runs, the loss
  the emulator really applied comes from its counters.

Workloads, all service → visitor (a visitor downloading from the tunneled service):

1. **Bulk**: \`iperf3 -R -C CC\` for the set time after \`-O\` seconds of slow start left out; one stream at
   1 Gbit/s × {50, 100 ms} × {0, 0.5 % loss} with cubic, one at 100 ms and 0.5 % loss with BBR, and
   8 streams (\`-P 8\`) at 50 ms and 0.5 % loss with cubic and with BBR (aggregate, and fairness as Jain's
   index over the 8 streams' rates: 1 means equal shares). Tunnel CPU per GB on the first cell.
2. **Time to first byte**: 50 sequential new HTTP/1.1 connections (\`Connection: close\`) at 50 ms RTT
   against the Node HTTP server, each timed from connect() to the first byte of the answer; median and
   p90. Direct needs two round trips (connect, then request); a tunnel whose server holds pre-opened
   channels can answer after one, since the visitor's connect ends on its own side.
3. **JSON logs** at 50 and 10 Mbit/s (50 ms RTT): the compressible corpus pushed for the set time,
   figure in original (uncompressed) bytes per second.

## Running it

\`\`\`sh
npm run bench                              # loopback, 3 runs of every path, 25-50 minutes (below)
npm run bench -- --quick                   # every path once, briefly (CI smoke test; assert no timings)
npm run bench -- --profile wan             # across the emulated WAN (root), about 30 minutes
npm run bench -- --profile wan --quick     # the WAN profile briefly (its CI test)
npm run bench -- --runs 5 --paths ssh,mtt --workloads bulk,rtt
npm run bench -- --write-docs              # also rewrite this profile's section of this page
\`\`\`

How long: one run of every loopback workload takes about 7 minutes on this machine when it is busy,
plus the time ssh -R needs to open 10,000 connections (it slows down as its channels grow: 271 s
for each of its two paths on a busy machine), so \`--conns 1000\` saves up to half a run; one WAN run
takes about 10 minutes, and its self-check one more. \`--seconds\` (10 by default) is most of the rest.

\`--out FILE\` sets the JSON results file (default \`.bench-out/bench-results.json\`, or
\`bench-wan-results.json\`); child process logs go to \`.bench-out/logs/\` (\`logs-wan/\`). OpenSSH, iperf3, wrk and nginx
are installed with apt-get when missing and running as root; otherwise the harness prints what to
install and reports those paths as skipped. The WAN profile stops at once, naming the apt-get line,
when \`ip\`, \`tc\`, \`nft\`, \`gcc\` or \`ping\` is missing. \`npm run bench -- --help\` lists every option.
`;
}
