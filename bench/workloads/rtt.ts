/** Workload 4: round-trip time of a 64-byte ping-pong on one established connection. */
import net from 'node:net';
import { echoProbe } from '../lib/net.js';
import { withTimeout } from '../lib/procs.js';
import { type FigureDef, outcome, type Workload } from './types.js';

const FIGURES: FigureDef[] = [
  { id: 'rtt_p50_us', label: 'RTT, 64-byte ping-pong, p50', unit: 'µs', better: 'lower' },
  { id: 'rtt_p99_us', label: 'RTT, 64-byte ping-pong, p99', unit: 'µs', better: 'lower' },
];

const WARMUP = 200;

/** The nearest-rank percentile of sorted samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Runs `rounds` timed round trips (after a warm-up) and returns them in microseconds. */
async function pingPong(host: string, port: number, rounds: number): Promise<Float64Array> {
  const sock = net.connect({ port, host });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.setNoDelay(true);
    const payload = Buffer.alloc(64, 0x2a);
    let missing = 0;
    let wake: (() => void) | undefined;
    let broken: Error | undefined;
    sock.on('data', (d: Buffer) => {
      missing -= d.length;
      if (missing <= 0 && wake) {
        const w = wake;
        wake = undefined;
        w();
      }
    });
    const fail = (err: Error) => {
      broken = err;
      wake?.();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed during the ping-pong')));
    const samples = new Float64Array(rounds);
    for (let i = 0; i < WARMUP + rounds; i++) {
      missing = payload.length;
      const got = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const t0 = process.hrtime.bigint();
      sock.write(payload);
      await got;
      const t1 = process.hrtime.bigint();
      if (broken) throw broken;
      if (i >= WARMUP) samples[i - WARMUP] = Number(t1 - t0) / 1000;
    }
    return samples;
  } finally {
    sock.destroy();
  }
}

/** A node echo helper is the local service; the harness is the client (so loopback only). */
export const rttWorkload: Workload = {
  id: 'rtt',
  title: 'RTT 64-byte ping-pong',
  needs: [],
  figures: () => FIGURES,
  budgetMs: (o) => 60_000 + o.rttRounds * 5,
  async run(ctx) {
    const out = outcome();
    const svc = await ctx.startService('echo');
    const tunnel = await ctx.startPath(svc.port, echoProbe);
    try {
      const samples = await withTimeout(
        pingPong(tunnel.publicHost, tunnel.publicPort, ctx.opts.rttRounds),
        30_000 + ctx.opts.rttRounds * 2,
        'ping-pong',
      );
      samples.sort();
      out.values.rtt_p50_us = percentile(samples, 50);
      out.values.rtt_p99_us = percentile(samples, 99);
      out.details.rounds = samples.length;
    } finally {
      await tunnel.stop();
    }
    return out;
  },
};
