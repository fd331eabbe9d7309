/** Workload 1: one bulk stream of incompressible bytes (iperf3's random payload), both directions. */
import { freePort, iperfProbe, LOOPBACK } from '../lib/net.js';
import { cpuDelta, cpuSnapshot, errorMessage, sleep } from '../lib/procs.js';
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

async function iperfClient(ctx: WorkloadCtx, port: number, reverse: boolean): Promise<IperfSum> {
  const iperf = ctx.tools.iperf3 as string;
  const args = [
    '-c',
    LOOPBACK,
    '-p',
    String(port),
    '-t',
    String(ctx.opts.seconds),
    '-J',
    '--connect-timeout',
    '5000',
  ];
  if (reverse) args.push('-R');
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await ctx.scope.run(`iperf3-client${reverse ? '-R' : ''}`, iperf, args, {
      timeoutMs: ctx.opts.seconds * 1000 + 30_000,
    });
    let j: { error?: string; end?: { sum_received?: { bits_per_second?: number; bytes?: number } } };
    try {
      j = JSON.parse(r.stdout);
    } catch {
      throw new Error(`iperf3 printed no JSON (exit ${r.code}): ${r.stderr.trim().slice(-300)}`);
    }
    const sum = j.end?.sum_received;
    if (!j.error && sum?.bits_per_second && sum.bytes)
      return { bitsPerSecond: sum.bits_per_second, bytes: sum.bytes };
    last = j.error ?? 'no sum_received in the JSON';
    // The server may still be tidying up the previous test.
    if (!/busy/i.test(last)) break;
    await sleep(500);
  }
  throw new Error(`iperf3${reverse ? ' -R' : ''}: ${last}`);
}

/** iperf3 through the path: the iperf3 server is the local service. */
export const bulkWorkload: Workload = {
  id: 'bulk',
  title: 'bulk incompressible (iperf3)',
  needs: ['iperf3'],
  figures: () => FIGURES,
  budgetMs: (o) => 2 * (o.seconds * 1000 + 35_000) + 30_000,
  async run(ctx) {
    const out = outcome();
    const port = await freePort();
    const server = ctx.scope.spawn('iperf3-server', ctx.tools.iperf3 as string, [
      '-s',
      '-p',
      String(port),
      '-B',
      LOOPBACK,
      // without it iperf3 buffers stdout in a pipe and the 'listening' line never arrives
      '--forceflush',
    ]);
    await server.waitForLine((l) => l.includes('Server listening'), 10_000, 'iperf3 server');
    const tunnel = await ctx.startPath(port, iperfProbe);
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
          const r = await iperfClient(ctx, tunnel.publicPort, reverse);
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
