/** Workload 2: one bulk stream of compressible bytes (generated JSON log lines), both directions. */
import { streamProbe } from '../lib/net.js';
import { errorMessage, sleep } from '../lib/procs.js';
import { type FigureDef, outcome, type Workload } from './types.js';

const FIGURES: FigureDef[] = [
  {
    id: 'json_in_gbps',
    label: 'Bulk compressible (JSON logs), client → service',
    unit: 'Gbit/s',
    better: 'higher',
  },
  {
    id: 'json_out_gbps',
    label: 'Bulk compressible (JSON logs), service → client',
    unit: 'Gbit/s',
    better: 'higher',
  },
];

interface StreamResult {
  bytes: number;
  seconds: number;
}

function parseResult(line: string): StreamResult {
  const r = (JSON.parse(line) as { result: StreamResult }).result;
  if (!r.bytes || !r.seconds) throw new Error(`nothing was received (${line})`);
  return r;
}

/** The stream helper is the local service; a stream-client helper is the external side. */
export const compressibleWorkload: Workload = {
  id: 'compressible',
  title: 'bulk compressible (JSON logs)',
  needs: [],
  figures: () => FIGURES,
  budgetMs: (o) => 2 * (o.seconds * 1000 + 35_000) + 30_000,
  async run(ctx) {
    const out = outcome();
    const secs = String(ctx.opts.seconds);
    const warm = String(Math.min(1000, ctx.opts.seconds * 250));
    // The corpus is made in each helper; a smaller one keeps --quick quick.
    const corpus = String(ctx.opts.quick ? 4 : 16);
    const svc = await ctx.startService('stream-server', ['--corpus-mib', corpus]);
    const tunnel = await ctx.startPath(svc.port, streamProbe);
    const bound = ctx.opts.seconds * 1000 + 40_000;
    try {
      try {
        const client = ctx.spawnHelper('stream-client', [
          '--host',
          tunnel.publicHost,
          '--port',
          String(tunnel.publicPort),
          '--mode',
          'up',
          '--seconds',
          secs,
          '--warmup-ms',
          warm,
          '--corpus-mib',
          corpus,
        ]);
        // The server reports the upload; give up early if the client dies without one.
        const clientDied = client.exited.then(async () => {
          await sleep(2000);
          throw new Error(`no upload result: ${client.describeExit()}`);
        });
        clientDied.catch(() => {});
        const line = await Promise.race([
          svc.proc.waitForLine((l) => l.includes('"dir":"up"'), bound, 'upload result'),
          clientDied,
        ]);
        const r = parseResult(line);
        out.values.json_in_gbps = (r.bytes * 8) / r.seconds / 1e9;
        out.details.json_in = r;
        await client.waitExit(5000);
        await client.stop(500);
      } catch (err) {
        out.errors.json_in_gbps = errorMessage(err);
      }
      try {
        const client = ctx.spawnHelper('stream-client', [
          '--host',
          tunnel.publicHost,
          '--port',
          String(tunnel.publicPort),
          '--mode',
          'down',
          '--seconds',
          secs,
          '--warmup-ms',
          warm,
          '--corpus-mib',
          corpus,
        ]);
        const line = await client.waitForLine((l) => l.includes('"result"'), bound, 'download result');
        const r = parseResult(line);
        out.values.json_out_gbps = (r.bytes * 8) / r.seconds / 1e9;
        out.details.json_out = r;
        await client.stop(500);
      } catch (err) {
        out.errors.json_out_gbps = errorMessage(err);
      }
    } finally {
      await tunnel.stop();
    }
    return out;
  },
};
