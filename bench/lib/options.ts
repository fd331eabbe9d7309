/** Command-line options of `npm run bench`. */
import path from 'node:path';

/** Parsed options; durations in seconds. */
export interface Options {
  quick: boolean;
  runs: number;
  /** Seconds of each timed workload (iperf3, compressible bulk, wrk). */
  seconds: number;
  /** Round trips of the RTT test. */
  rttRounds: number;
  /** Open connections at which RSS is read. */
  conns: number[];
  out: string;
  outDir: string;
  writeDocs: boolean;
  paths: string[] | undefined;
  workloads: string[] | undefined;
  install: boolean;
  strict: boolean;
  /** Bound on the whole bench, seconds. */
  timeoutSec: number;
  /** The arguments as given, for the "exact command". */
  argv: string[];
}

/** Usage text. */
export const USAGE = `Usage: npm run bench -- [options]

Measures direct loopback, mtt, and OpenSSH ssh -R (chacha20-poly1305, Compression=no and =yes).

  --quick             every path once, ~1 s per workload, 100 connections (CI smoke test)
  --runs N            runs per path; figures are medians with min-max (default 3, quick 1)
  --seconds S         seconds per timed workload (default 10, quick 1)
  --rtt-rounds N      round trips for the RTT test (default 10000, quick 1000)
  --conns A,B         open connections for the RSS test (default 1000,10000, quick 100)
  --paths a,b         only these paths: direct, mtt, ssh, ssh-comp, node-relay
  --workloads a,b     only these workloads: rtt, bulk, compressible, connections, resources
  --out FILE          JSON results (default .bench-out/bench-results.json)
  --write-docs        also write docs/BENCHMARKS.md from this run
  --no-install        never apt-get install missing tools
  --strict            exit 2 when any figure failed
  --timeout SEC       bound on the whole bench (default 3600, quick 300)
  -h, --help          this text
`;

/** Parses argv (without node and script). Throws with a message on a bad option. */
export function parseOptions(argv: string[]): Options | 'help' {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    runs: quick ? 1 : 3,
    seconds: quick ? 1 : 10,
    rttRounds: quick ? 1000 : 10000,
    conns: quick ? [100] : [1000, 10000],
    out: '',
    outDir: path.resolve('.bench-out'),
    writeDocs: false,
    paths: undefined,
    workloads: undefined,
    install: true,
    strict: false,
    timeoutSec: quick ? 300 : 3600,
    argv,
  };
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min)
      throw new Error(`${name} needs an integer >= ${min}`);
    return n;
  };
  const list = (name: string, v: string | undefined): string[] => {
    if (!v) throw new Error(`${name} needs a comma-separated list`);
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--quick':
        break;
      case '--runs':
        o.runs = int(a, next(), 1);
        break;
      case '--seconds':
        o.seconds = int(a, next(), 1);
        break;
      case '--rtt-rounds':
        o.rttRounds = int(a, next(), 10);
        break;
      case '--conns':
        o.conns = list(a, next()).map((s) => int(a, s, 1));
        break;
      case '--paths':
        o.paths = list(a, next());
        break;
      case '--workloads':
        o.workloads = list(a, next());
        break;
      case '--out':
        o.out = path.resolve(next() ?? '');
        break;
      case '--write-docs':
        o.writeDocs = true;
        break;
      case '--no-install':
        o.install = false;
        break;
      case '--strict':
        o.strict = true;
        break;
      case '--timeout':
        o.timeoutSec = int(a, next(), 10);
        break;
      case '-h':
      case '--help':
        return 'help';
      default:
        throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (!o.out) o.out = path.join(o.outDir, 'bench-results.json');
  return o;
}
