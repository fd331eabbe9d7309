/** Workload 5: resident memory of the tunnel's processes, idle and with many open connections. */
import { echoProbe } from '../lib/net.js';
import type { Options } from '../lib/options.js';
import { effectiveNofile, type Proc, readComm, readRssKiB, sleep } from '../lib/procs.js';
import { type FigureDef, outcome, type Workload } from './types.js';

/**
 * Connections being opened at once. mtt's server refuses data channels beyond 64 handshakes in
 * progress, so a larger burst measures that limit instead of memory.
 */
const OPEN_CONCURRENCY = 32;

/**
 * Opening many connections is waited for as long as it makes progress: ssh -R slows down as its
 * channels grow (about 7,000 of 10,000 in 160 s on a loaded 2-core machine), so a fixed bound per
 * connection measured the machine's load instead of failing only a tunnel that stopped opening.
 */
const STALL_MS = 30_000;
/** The most a connection may take on average before the whole workload is given up. */
const MS_PER_CONNECTION = 30;

/** The figure id for RSS at `n` connections. */
export function rssId(n: number): string {
  return `rss_${n}_mib`;
}

function figures(o: Options): FigureDef[] {
  return [
    { id: 'rss_idle_mib', label: 'Tunnel RSS, idle (server + client)', unit: 'MiB', better: 'lower' },
    ...o.conns.map(
      (n): FigureDef => ({
        id: rssId(n),
        label: `Tunnel RSS, ${n.toLocaleString('en-US')} open connections`,
        unit: 'MiB',
        better: 'lower',
      }),
    ),
  ];
}

function rss(pids: number[]): { mib: number; procs: { pid: number; comm: string; kib: number }[] } {
  const procs = pids.map((pid) => ({ pid, comm: readComm(pid), kib: readRssKiB(pid) ?? 0 }));
  return { mib: procs.reduce((s, p) => s + p.kib, 0) / 1024, procs };
}

/** Waits for the holder's `reached` line for `n`, as long as each 30 s opens more connections. */
async function reached(holder: Proc, n: number): Promise<string> {
  let open = -1;
  for (;;) {
    const line = await holder.waitForLine(
      (l) =>
        l.includes(`"reached":${n},`) ||
        (l.startsWith(`{"progress":${n},`) && (JSON.parse(l) as { open: number }).open > open),
      STALL_MS,
      `opening ${n} connections (${Math.max(0, open)} open, then none more)`,
    );
    if (!line.startsWith('{"progress"')) return line;
    open = (JSON.parse(line) as { open: number }).open;
  }
}

/** Opens many connections through the path (held by a helper) and reads VmRSS of its processes. */
export const resourcesWorkload: Workload = {
  id: 'resources',
  title: 'RSS with open connections',
  needs: [],
  figures,
  notFor: (path) => (path.name === 'direct' ? 'no tunnel processes' : undefined),
  budgetMs: (o) => 90_000 + o.conns.reduce((s, n) => s + n * MS_PER_CONNECTION, 0),
  async run(ctx) {
    const out = outcome();
    const max = Math.max(...ctx.opts.conns);
    // Each connection costs up to 3 descriptors in one process (public, data channel, local dial).
    const nofile = Math.max(4096, max * 4 + 1024);
    const svc = await ctx.startService('echo', [], nofile);
    const tunnel = await ctx.startPath(svc.port, echoProbe, nofile);
    try {
      await sleep(500);
      const idle = rss(tunnel.pids());
      out.values.rss_idle_mib = idle.mib;
      out.details.idle = idle.procs;
      const holder = ctx.spawnHelper(
        'hold',
        [
          '--host',
          tunnel.publicHost,
          '--port',
          String(tunnel.publicPort),
          '--targets',
          ctx.opts.conns.join(','),
          '--concurrency',
          String(OPEN_CONCURRENCY),
        ],
        nofile,
      );
      for (const n of ctx.opts.conns) {
        const id = rssId(n);
        let line: string;
        try {
          line = await reached(holder, n);
        } catch (err) {
          out.errors[id] = err instanceof Error ? err.message : String(err);
          break;
        }
        const r = JSON.parse(line) as { open: number; failed: number; lastError: string; seconds: number };
        await sleep(1000); // let allocations settle
        const at = rss(tunnel.pids());
        out.details[`conns_${n}`] = { ...r, procs: at.procs };
        if (r.open < n) {
          // One tunneled connection holds two descriptors in each of mtt's processes (one in ssh's).
          const limit = effectiveNofile(nofile);
          const fdNote =
            limit < 2 * n + 256
              ? `; the open-file limit here is ${limit} and cannot be raised, and a tunnel process that holds 2 descriptors per connection needs about ${2 * n}`
              : '';
          out.errors[id] =
            `only some of ${n} connections opened (${r.failed} failed: ${r.lastError})${fdNote}`;
          break;
        }
        out.values[id] = at.mib;
        ctx.progress(`  ${n} connections open in ${r.seconds.toFixed(1)} s, RSS ${at.mib.toFixed(1)} MiB`);
        holder.send('next\n');
      }
      const failed = Object.keys(out.errors)[0];
      for (const n of ctx.opts.conns) {
        if (out.values[rssId(n)] === undefined && !out.errors[rssId(n)]) {
          out.errors[rssId(n)] = `not tried: ${failed ? 'a smaller count failed' : 'the holder stopped'}`;
        }
      }
      await holder.stop(1000);
    } finally {
      await tunnel.stop();
    }
    return out;
  },
};
