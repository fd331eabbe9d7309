/** Workload 1: one bulk stream of incompressible bytes (iperf3's random payload), both directions. */
import { freePort, iperfProbe } from '../lib/net.js';
import { cpuDelta, cpuSnapshot, errorMessage, type Proc, sleep } from '../lib/procs.js';
import { type FigureDef, outcome, type Workload, type WorkloadCtx } from './types.js';

const FIGURES: FigureDef[] = [
  {
    id: 'bulk_in_gbps',
    label: 'Bulk incompressible (iperf3), client → service',
    unit: 'Gbit/s',
    better: 'higher',
  },
  {
    id: 'bulk_out_gbps',
    label: 'Bulk incompressible (iperf3 -R), service → client',
    unit: 'Gbit/s',
    better: 'higher',
  },
  {
    id: 'cpu_s_per_gb',
    label: 'Tunnel CPU per GB moved (bulk incompressible)',
    unit: 'CPU s/GB',
    better: 'lower',
  },
];

interface IperfSum {
  bitsPerSecond: number;
  bytes: number;
}

/** What the bench reads from iperf3 -J (the client's report). */
export interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second?: number; bytes?: number };
    sum_sent?: { retransmits?: number };
    streams?: Array<{ receiver?: { bits_per_second?: number; bytes?: number } }>;
    sender_tcp_congestion?: string;
    receiver_tcp_congestion?: string;
  };
}

/**
 * Runs an iperf3 client on the visitor side against host:port for `seconds` (plus `extra` options)
 * and returns its JSON report; retries while the server is still busy with the previous test.
 */
export async function runIperf(
  ctx: WorkloadCtx,
  server: IperfServer,
  host: string,
  port: number,
  seconds: number,
  extra: string[],
): Promise<IperfJson & { end: NonNullable<IperfJson['end']> }> {
  const iperf = ctx.tools.iperf3 as string;
  const args = ['-c', host, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '5000'];
  args.push(...extra);
  const omit = Number(extra[extra.indexOf('-O') + 1] ?? 0) || 0;
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    await iperfIdle(server.proc, serviceConnsOpen(ctx, server.port));
    const r = await ctx.runAt('visitor', `iperf3-client${extra.includes('-R') ? '-R' : ''}`, iperf, args, {
      timeoutMs: (seconds + omit) * 1000 + 30_000,
    });
    let j: IperfJson;
    try {
      j = JSON.parse(r.stdout) as IperfJson;
    } catch {
      throw new Error(`iperf3 printed no JSON (exit ${r.code}): ${r.stderr.trim().slice(-300)}`);
    }
    const sum = j.end?.sum_received;
    if (!j.error && j.end && sum?.bits_per_second && sum.bytes)
      return j as IperfJson & { end: NonNullable<IperfJson['end']> };
    last = j.error ?? 'no sum_received in the JSON';
    // The server may still be tidying up the previous test (a tunnel turns its closed listener
    // into a closed control connection).
    if (!/busy|control socket has closed unexpectedly/i.test(last)) break;
    await sleep(500);
  }
  throw new Error(`iperf3${extra.includes('-R') ? ' -R' : ''}: ${last}`);
}

async function iperfClient(
  ctx: WorkloadCtx,
  server: IperfServer,
  host: string,
  port: number,
  reverse: boolean,
): Promise<IperfSum> {
  const j = await runIperf(ctx, server, host, port, ctx.opts.seconds, reverse ? ['-R'] : []);
  const sum = j.end.sum_received as { bits_per_second: number; bytes: number };
  return { bitsPerSecond: sum.bits_per_second, bytes: sum.bytes };
}

/** A running iperf3 server. */
export interface IperfServer {
  proc: Proc;
  port: number;
}

/** The states of `port`'s server-side TCP sockets that are not its listener or TIME-WAIT leftovers. */
export function openConnStates(ssOutput: string): string[] {
  return ssOutput
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((st) => st && st !== 'LISTEN' && st !== 'TIME-WAIT');
}

/**
 * Waits until the iperf3 server is idle: it listens again and no connection to it is open. Between
 * tests (a readiness probe counts as one) it closes its listening socket and opens a new one; a client
 * that comes in that gap is refused, and one that comes while the previous session is still being torn
 * down lands in the old listener's backlog and is reset when iperf3 closes it. Over a slow link the
 * previous session can end a round trip or a retransmission after its client has gone, so the log
 * alone does not tell: `connsOpen` reads the server's sockets (ss on the service side).
 */
export async function iperfIdle(
  proc: Proc,
  connsOpen: () => Promise<string[]>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const events = () =>
    proc.stdout.split('\n').filter((l) => /Server listening|error|Accepted connection/.test(l));
  let open: string[] = [];
  for (;;) {
    const seen = events();
    if (/Server listening/.test(seen.at(-1) ?? '')) {
      open = await connsOpen();
      // Nothing open, and no line arrived meanwhile (a session that just ended logs before relistening).
      if (open.length === 0 && events().length === seen.length) return;
    }
    if (proc.exit) throw new Error(proc.describeExit());
    if (Date.now() > deadline) {
      const why = open.length > 0 ? ` (still open: ${open.join(', ')})` : '';
      throw new Error(`the iperf3 server was not idle within ${timeoutMs} ms${why}`);
    }
    await sleep(20);
  }
}

/** The connsOpen of {@link iperfIdle} for a server on the service side of this workload. */
export function serviceConnsOpen(ctx: WorkloadCtx, port: number): () => Promise<string[]> {
  return async () => {
    const r = await ctx.runAt('service', 'ss', ctx.tools.ss ?? 'ss', ['-tanH', `sport = :${port}`], {
      timeoutMs: 5000,
    });
    if (r.code !== 0) throw new Error(`ss failed (exit ${r.code}): ${r.stderr.trim().slice(-200)}`);
    return openConnStates(r.stdout);
  };
}

/** Starts an iperf3 server on the service side and waits until it listens. */
export async function startIperfServer(ctx: WorkloadCtx): Promise<IperfServer> {
  const port = await freePort();
  const server = ctx.spawnAt('service', 'iperf3-server', ctx.tools.iperf3 as string, [
    '-s',
    '-p',
    String(port),
    '-B',
    ctx.topo.serviceBind,
    // without it iperf3 buffers stdout in a pipe and the 'listening' line never arrives
    '--forceflush',
  ]);
  await server.waitForLine((l) => l.includes('Server listening'), 10_000, 'iperf3 server');
  return { proc: server, port };
}

/** iperf3 through the path: the iperf3 server is the local service. */
export const bulkWorkload: Workload = {
  id: 'bulk',
  title: 'bulk incompressible (iperf3)',
  needs: ['iperf3', 'ss'],
  figures: () => FIGURES,
  budgetMs: (o) => 2 * (o.seconds * 1000 + 35_000) + 30_000,
  async run(ctx) {
    const out = outcome();
    const server = await startIperfServer(ctx);
    const tunnel = await ctx.startPath(server.port, iperfProbe);
    try {
      const pids0 = tunnel.pids();
      const before = cpuSnapshot(pids0);
      let bytes = 0;
      let bothOk = true;
      for (const [id, reverse] of [
        ['bulk_in_gbps', false],
        ['bulk_out_gbps', true],
      ] as const) {
        try {
          const r = await iperfClient(ctx, server, tunnel.publicHost, tunnel.publicPort, reverse);
          out.values[id] = r.bitsPerSecond / 1e9;
          out.details[`${id}_bytes`] = r.bytes;
          bytes += r.bytes;
        } catch (err) {
          out.errors[id] = errorMessage(err);
          bothOk = false;
        }
        await sleep(300);
      }
      const pids = [...new Set([...pids0, ...tunnel.pids()])];
      if (pids.length > 0 && bothOk && bytes > 0) {
        const cpu = cpuDelta(before, cpuSnapshot(pids));
        out.values.cpu_s_per_gb = cpu / (bytes / 1e9);
        out.details.cpu_seconds = cpu;
        out.details.bytes_moved = bytes;
      } else if (pids.length > 0) {
        out.errors.cpu_s_per_gb = 'a bulk direction failed';
      }
    } finally {
      await tunnel.stop();
    }
    return out;
  },
};
