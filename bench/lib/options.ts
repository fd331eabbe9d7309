/** Command-line options of `npm run bench`. */
import path from 'node:path';

/** The benchmark profiles: everything on loopback, or across an emulated WAN in namespaces. */
export type ProfileName = 'loopback' | 'wan';

/** Parsed options; durations in seconds. */
export interface Options {
  profile: ProfileName;
  quick: boolean;
  runs: number;
  /** Seconds of each timed workload (iperf3, compressible bulk, wrk). */
  seconds: number;
  /** WAN: seconds iperf3 runs before it starts counting (slow start), `iperf3 -O`. */
  omitSeconds: number;
  /** WAN: sequential new connections timed to their first byte. */
  ttfbCount: number;
  /** WAN: measure even when the emulator's validation fails. */
  force: boolean;
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

Measures direct, mtt, and OpenSSH ssh -R (chacha20-poly1305, Compression=no and =yes).

  --profile P         loopback (default): everything on 127.0.0.1; wan: across an emulated WAN
                      in network namespaces (root; needs ip, tc, nft, gcc, ping)
  --quick             every path once, briefly (CI smoke test; no figure means anything)
  --runs N            runs per path; figures are medians with min-max (default 3, quick 1)
  --seconds S         seconds per timed workload (default 10, quick 1)
  --omit S            WAN: iperf3 seconds left out at the start, slow start (default 2, quick 0)
  --ttfb-count N      WAN: new connections timed to their first byte (default 50, quick 10)
  --rtt-rounds N      round trips for the RTT test (default 10000, quick 1000)
  --conns A,B         open connections for the RSS test (default 1000,10000, quick 100)
  --paths a,b         only these paths: direct, mtt, ssh, ssh-comp, node-relay (loopback only),
                      and mtt-zstd (mtt with compress: "zstd"; run only when named)
  --workloads a,b     only these workloads (an id, or the part before ':' of a WAN id):
                      loopback: rtt, bulk, compressible, connections, connections-nginx, resources;
                      wan: bulk, parallel8, ttfb, json
  --force             WAN: measure even when the emulator's self-check fails
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
    profile: 'loopback',
    quick,
    runs: quick ? 1 : 3,
    seconds: quick ? 1 : 10,
    omitSeconds: quick ? 0 : 2,
    ttfbCount: quick ? 10 : 50,
    force: false,
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
      case '--profile': {
        const p = next();
        if (p !== 'loopback' && p !== 'wan') throw new Error('--profile is loopback or wan');
        o.profile = p;
        break;
      }
      case '--omit':
        o.omitSeconds = int(a, next(), 0);
        break;
      case '--ttfb-count':
        o.ttfbCount = int(a, next(), 1);
        break;
      case '--force':
        o.force = true;
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
  if (o.profile === 'wan' && !argv.includes('--timeout')) o.timeoutSec = quick ? 900 : 7200;
  if (!o.out)
    o.out = path.join(o.outDir, o.profile === 'wan' ? 'bench-wan-results.json' : 'bench-results.json');
  return o;
}
