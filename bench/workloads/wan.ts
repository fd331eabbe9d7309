/**
 * The WAN profile's workloads: each runs over one emulated link setting (delay, loss, rate,
 * congestion control), applied by the harness before each run. The visitor side downloads from the
 * service side (service → visitor), as a visitor of a tunneled service mostly does.
 */
import type { WanSetting } from '../../test/system/lib/wan.js';
import { httpProbe, iperfProbe, streamProbe } from '../lib/net.js';
import { cpuDelta, cpuSnapshot, errorMessage, sleep } from '../lib/procs.js';
import { runIperf, startIperfServer } from './bulk.js';
import { percentile } from './rtt.js';
import type { WorkloadCtx } from './types.js';
import { type FigureDef, outcome, type Workload } from './types.js';

/** One link setting, with a short name for ids and a label for rows. */
interface Cell {
  setting: WanSetting;
  /** e.g. "50ms-0.5%-cubic". */
  key: string;
  /** e.g. "1 Gbit/s, 50 ms, 0.5 % loss, cubic". */
  label: string;
}

function cell(rttMs: number, lossPct: number, rateMbit: number, cc: WanSetting['cc']): Cell {
  const rate = rateMbit >= 1000 ? `${rateMbit / 1000} Gbit/s` : `${rateMbit} Mbit/s`;
  const loss = lossPct > 0 ? `${lossPct} % loss` : 'no loss';
  return {
    setting: { rttMs, lossPct, rateMbit, cc },
    key: `${rateMbit}mbit-${rttMs}ms-${lossPct}pct-${cc}`,
    label: `${rate}, ${rttMs} ms, ${loss}, ${cc}`,
  };
}

/** An id part from a key: letters, digits and '_'. */
function idOf(key: string): string {
  return key.replace(/\./g, '_').replace(/-/g, '_');
}

/** Figure id of the tunnel CPU per GB on the first bulk cell. */
const CPU_FIGURE: FigureDef = {
  id: 'wan_cpu_s_per_gb',
  label: 'Tunnel CPU per GB moved, 1 stream, 1 Gbit/s, 50 ms, no loss, cubic',
  unit: 'CPU s/GB',
  better: 'lower',
};

/** Congestion-control names seen on the visitor side's sockets to the service side (`ss -ti`). */
async function ccOnWan(ctx: WorkloadCtx): Promise<string[]> {
  const r = await ctx.runAt('visitor', 'ss', 'ss', ['-tinH', 'dst', ctx.topo.serviceAddr], {
    timeoutMs: 5000,
  });
  return [...new Set([...r.stdout.matchAll(/\b(cubic|bbr|reno)\b/g)].map((m) => m[1] as string))].sort();
}

/** iperf3 -R with `streams` streams over one link setting. */
function bulkWorkload(c: Cell, streams: number, withCpu: boolean): Workload {
  const base = streams === 1 ? 'wan_bulk' : `wan_p${streams}`;
  const rate: FigureDef = {
    id: `${base}_${idOf(c.key)}_mbps`,
    label: `${streams === 1 ? '1 stream' : `${streams} streams, aggregate`}, ${c.label}`,
    unit: 'Mbit/s',
    better: 'higher',
  };
  const fairness: FigureDef = {
    id: `${base}_${idOf(c.key)}_jain`,
    label: `${streams} streams, ${c.label}: fairness (Jain's index, 1 = equal shares)`,
    unit: 'index',
    better: 'higher',
  };
  const figures = [rate, ...(streams > 1 ? [fairness] : []), ...(withCpu ? [CPU_FIGURE] : [])];
  return {
    id: `${streams === 1 ? 'bulk' : `parallel${streams}`}:${c.key}`,
    title: `${streams} stream(s) over ${c.label}`,
    needs: ['iperf3', 'ss'],
    wan: c.setting,
    figures: () => figures,
    budgetMs: (o) => (o.seconds + o.omitSeconds) * 1000 + 90_000,
    async run(ctx) {
      const out = outcome();
      const server = await startIperfServer(ctx);
      const tunnel = await ctx.startPath(server.port, iperfProbe);
      try {
        const pids0 = tunnel.pids();
        // CPU is counted over what iperf3 reports, after its omitted pre-test seconds.
        const before = sleep(ctx.opts.omitSeconds * 1000).then(() => cpuSnapshot(pids0));
        // Halfway through, read which congestion control the sockets crossing the WAN use.
        const midway = sleep(((ctx.opts.omitSeconds + ctx.opts.seconds) * 1000) / 2).then(() => ccOnWan(ctx));
        midway.catch(() => {});
        const extra = ['-R', '-C', c.setting.cc, '-P', String(streams), '-O', String(ctx.opts.omitSeconds)];
        const j = await runIperf(ctx, server, tunnel.publicHost, tunnel.publicPort, ctx.opts.seconds, extra);
        const sum = j.end.sum_received as { bits_per_second: number; bytes: number };
        out.values[rate.id] = sum.bits_per_second / 1e6;
        out.details.bytes = sum.bytes;
        out.details.retransmits = j.end.sum_sent?.retransmits;
        if (streams > 1) {
          const each = (j.end.streams ?? []).map((s) => (s.receiver?.bits_per_second ?? 0) / 1e6);
          out.details.streams_mbps = each;
          const sq = each.reduce((a, x) => a + x * x, 0);
          if (each.length === streams && sq > 0)
            out.values[fairness.id] = each.reduce((a, x) => a + x, 0) ** 2 / (streams * sq);
          else out.errors[fairness.id] = `iperf3 reported ${each.length} of ${streams} streams`;
        }
        if (withCpu) {
          const pids = [...new Set([...pids0, ...tunnel.pids()])];
          if (pids.length > 0) {
            const cpu = cpuDelta(await before, cpuSnapshot(pids));
            out.values[CPU_FIGURE.id] = cpu / (sum.bytes / 1e9);
            out.details.cpu_seconds = cpu;
          }
        }
        try {
          out.details.cc_seen = await midway;
        } catch (err) {
          out.details.cc_seen_error = errorMessage(err);
        }
      } finally {
        await tunnel.stop();
      }
      return out;
    },
  };
}

const TTFB_FIGURES: FigureDef[] = [
  {
    id: 'wan_ttfb_p50_ms',
    label: 'Time to first byte, new HTTP connection, 50 ms RTT, median',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'wan_ttfb_p90_ms',
    label: 'Time to first byte, new HTTP connection, 50 ms RTT, p90',
    unit: 'ms',
    better: 'lower',
  },
];

/** N sequential new HTTP connections (Node HTTP helper as the service), each timed to its first byte. */
function ttfbWorkload(c: Cell): Workload {
  return {
    id: `ttfb:${c.key}`,
    title: `time to first byte over ${c.label}`,
    needs: [],
    wan: c.setting,
    figures: () => TTFB_FIGURES,
    budgetMs: (o) => o.ttfbCount * (4 * c.setting.rttMs + 200) + 60_000,
    async run(ctx) {
      const out = outcome();
      const svc = await ctx.startService('http');
      const tunnel = await ctx.startPath(svc.port, httpProbe);
      try {
        // A pooled tunnel may still be opening its spare channels just after the probe.
        await sleep(500);
        const client = ctx.spawnHelper('ttfb', [
          '--host',
          tunnel.publicHost,
          '--port',
          String(tunnel.publicPort),
          '--count',
          String(ctx.opts.ttfbCount),
        ]);
        const line = await client.waitForLine(
          (l) => l.startsWith('{"result"') || l.startsWith('{"error"'),
          ctx.opts.ttfbCount * (4 * c.setting.rttMs + 2000) + 10_000,
          'ttfb helper',
        );
        const j = JSON.parse(line) as {
          result?: { firstByteMs: number[]; connectMs: number[] };
          error?: string;
        };
        if (!j.result) throw new Error(`ttfb: ${j.error}`);
        const samples = [...j.result.firstByteMs].sort((a, b) => a - b);
        out.values.wan_ttfb_p50_ms = percentile(samples, 50);
        out.values.wan_ttfb_p90_ms = percentile(samples, 90);
        const connect = [...j.result.connectMs].sort((a, b) => a - b);
        out.details.connect_p50_ms = percentile(connect, 50);
        out.details.first_byte_ms = j.result.firstByteMs;
      } finally {
        await tunnel.stop();
      }
      return out;
    },
  };
}

/** The JSON-log corpus pushed from the service to the visitor over a slow link. */
function jsonWorkload(c: Cell): Workload {
  const fig: FigureDef = {
    id: `wan_json_${c.setting.rateMbit}mbit_mbps`,
    label: `JSON logs, service → visitor, ${c.label} (original bytes)`,
    unit: 'Mbit/s',
    better: 'higher',
  };
  return {
    id: `json:${c.key}`,
    title: `JSON logs over ${c.label}`,
    needs: [],
    wan: c.setting,
    figures: () => [fig],
    budgetMs: (o) => o.seconds * 1000 + 90_000,
    async run(ctx) {
      const out = outcome();
      const corpus = String(ctx.opts.quick ? 4 : 16);
      const svc = await ctx.startService('stream-server', ['--corpus-mib', corpus]);
      const tunnel = await ctx.startPath(svc.port, streamProbe);
      try {
        const client = ctx.spawnHelper('stream-client', [
          '--host',
          tunnel.publicHost,
          '--port',
          String(tunnel.publicPort),
          '--mode',
          'down',
          '--seconds',
          String(ctx.opts.seconds),
          '--warmup-ms',
          String(ctx.opts.quick ? 500 : 2000),
        ]);
        const line = await client.waitForLine(
          (l) => l.includes('"result"') || l.includes('"error"'),
          ctx.opts.seconds * 1000 + 60_000,
          'download result',
        );
        const r = (JSON.parse(line) as { result?: { bytes: number; seconds: number }; error?: string })
          .result;
        if (!r?.bytes || !r.seconds) throw new Error(`nothing was received (${line})`);
        out.values[fig.id] = (r.bytes * 8) / r.seconds / 1e6;
        out.details.json = r;
      } finally {
        await tunnel.stop();
      }
      return out;
    },
  };
}

const GBIT_50 = cell(50, 0, 1000, 'cubic');

/** Every WAN workload, in run and row order. */
export const WAN_WORKLOADS: Workload[] = [
  bulkWorkload(GBIT_50, 1, true),
  bulkWorkload(cell(100, 0, 1000, 'cubic'), 1, false),
  bulkWorkload(cell(50, 0.5, 1000, 'cubic'), 1, false),
  bulkWorkload(cell(100, 0.5, 1000, 'cubic'), 1, false),
  // The issue's table measured the lossy long link with BBR (the namespace default here).
  bulkWorkload(cell(100, 0.5, 1000, 'bbr'), 1, false),
  bulkWorkload(cell(50, 0.5, 1000, 'cubic'), 8, false),
  bulkWorkload(cell(50, 0.5, 1000, 'bbr'), 8, false),
  ttfbWorkload(GBIT_50),
  jsonWorkload(cell(50, 0, 50, 'cubic')),
  jsonWorkload(cell(50, 0, 10, 'cubic')),
];
