/**
 * Workload 3: new connections per second (wrk with `Connection: close`) against a small HTTP server:
 * the Node HTTP helper, and nginx (real deployments put a real server behind the tunnel).
 */

import { httpProbe } from '../lib/net.js';
import { startNginx } from '../lib/nginx.js';
import { cpuDelta, cpuSnapshot } from '../lib/procs.js';
import { type FigureDef, outcome, type Workload } from './types.js';

/** The figures for one HTTP target; the Node target keeps the ids it always had. */
function figures(target: 'node' | 'nginx'): FigureDef[] {
  const id = (base: string) => (target === 'node' ? base : `${base}_nginx`);
  const who = target === 'node' ? 'Node HTTP target' : 'nginx target';
  return [
    {
      id: id('conn_rps'),
      label: `New connections, ${who} (wrk -c10 -t2, Connection: close)`,
      unit: 'req/s',
      better: 'higher',
    },
    { id: id('conn_p50_ms'), label: `New connections, ${who}, latency p50`, unit: 'ms', better: 'lower' },
    { id: id('conn_p99_ms'), label: `New connections, ${who}, latency p99`, unit: 'ms', better: 'lower' },
    {
      id: id('cpu_us_per_conn'),
      label: `Tunnel CPU per new connection, ${who}`,
      unit: 'CPU µs',
      better: 'lower',
    },
  ];
}

/** A wrk duration ("551.00us", "1.97ms", "1.02s", "2.00m") in milliseconds. */
export function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
  return v * (scale[m[2] as string] ?? Number.NaN);
}

/** The figures wrk --latency prints. */
export interface WrkResult {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  socketErrors: string | undefined;
  non2xx: number;
}

/** Parses wrk's text report. */
export function parseWrk(text: string): WrkResult {
  const reqs = /(\d+) requests in/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const p50 = /^\s*50%\s+(\S+)/m.exec(text);
  const p99 = /^\s*99%\s+(\S+)/m.exec(text);
  const errs = /Socket errors: (.*)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (!reqs || !rps || !p50 || !p99) throw new Error(`unexpected wrk output: ${text.trim().slice(-300)}`);
  return {
    requests: Number(reqs[1]),
    rps: Number(rps[1]),
    p50ms: wrkMs(p50[1] as string),
    p99ms: wrkMs(p99[1] as string),
    socketErrors: errs?.[1]?.trim(),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** wrk opens a fresh connection per request through the path to `target`. */
function connections(target: 'node' | 'nginx'): Workload {
  const defs = figures(target);
  const [rps, p50, p99, cpuPer] = defs.map((f) => f.id) as [string, string, string, string];
  return {
    id: target === 'node' ? 'connections' : 'connections-nginx',
    title: `new connections (wrk), ${target === 'node' ? 'Node' : 'nginx'} target`,
    needs: target === 'node' ? ['wrk'] : ['wrk', 'nginx'],
    figures: () => defs,
    budgetMs: (o) => o.seconds * 1000 + 60_000,
    async run(ctx) {
      const out = outcome();
      const svc =
        target === 'node'
          ? await ctx.startService('http', [], 65536)
          : await startNginx(ctx.scope, ctx.tools.nginx as string, ctx.topo);
      const tunnel = await ctx.startPath(svc.port, httpProbe);
      try {
        const pids0 = tunnel.pids();
        const before = cpuSnapshot(pids0);
        const args = ['-c10', '-t2', `-d${ctx.opts.seconds}s`, '--latency', '--timeout', '5s'];
        args.push('-H', 'Connection: close', `http://${tunnel.publicHost}:${tunnel.publicPort}/`);
        const r = await ctx.runAt('visitor', 'wrk', ctx.tools.wrk as string, args, {
          timeoutMs: ctx.opts.seconds * 1000 + 30_000,
          nofile: 4096,
        });
        const pids = [...new Set([...pids0, ...tunnel.pids()])];
        const cpu = cpuDelta(before, cpuSnapshot(pids));
        if (r.code !== 0)
          throw new Error(`wrk exit ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
        const w = parseWrk(r.stdout);
        if (w.requests === 0)
          throw new Error(`wrk completed no request (socket errors: ${w.socketErrors ?? 'none'})`);
        out.values[rps] = w.rps;
        out.values[p50] = w.p50ms;
        out.values[p99] = w.p99ms;
        if (pids.length > 0) out.values[cpuPer] = (cpu / w.requests) * 1e6;
        out.details.wrk = w;
      } finally {
        await tunnel.stop();
      }
      return out;
    },
  };
}

/** New connections against the Node HTTP helper. */
export const connectionsWorkload: Workload = connections('node');

/** New connections against nginx. */
export const nginxConnectionsWorkload: Workload = connections('nginx');
