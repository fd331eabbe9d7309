/**
 * `npm run bench:rate-limit`: does a tunnel's rateLimit hold? A real `mtt server` and `mtt client`
 * (child processes of the built CLI) carry one tunnel with `rateLimit` set; a local service and the
 * visitors push bytes as fast as TCP lets them, with 1 and with 8 connections, upload (visitor to
 * service) and download (service to visitor). The rate is measured at the receiving end over a
 * window that starts after a warm-up (so the bucket's initial burst is left out), and reported as a
 * ratio to the set rate: the median of `--runs` runs (default 3). Loopback only; every process and
 * socket ends with the run.
 *
 *   node dist/bench/rate-limit.js [--rate 10MB/s] [--seconds 5] [--runs 3] [--quick]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseRate } from '../src/config/rate.js';
import { formatPublicKeyLine, generateIdentity, writeIdentityFiles } from '../src/identity/index.js';
import { freePort } from '../test/lib/free-port.js';

const MTT = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

interface Options {
  rateText: string;
  rate: number;
  seconds: number;
  warmupSeconds: number;
  runs: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rate: { type: 'string', default: '10MB/s' },
      seconds: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick === true;
  return {
    rateText: values.rate!,
    rate: parseRate(values.rate!),
    seconds: Number(values.seconds ?? (quick ? 2 : 5)),
    warmupSeconds: quick ? 0.5 : 1,
    runs: Number(values.runs ?? (quick ? 1 : 3)),
  };
}

/** A child `mtt …`; resolves once its stderr shows `ready`. */
async function mtt(args: string[], env: NodeJS.ProcessEnv, ready: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MTT, ...args, '--log-format', 'json'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mtt ${args[0]} not ready in 20 s:\n${err}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`mtt ${args[0]} exited:\n${err}`)));
  });
  child.stderr!.resume();
  return child;
}

/** Writes CHUNKs as fast as the socket drains, until stopped. */
function pump(s: Socket): () => void {
  let stopped = false;
  const go = () => {
    while (!stopped && s.write(CHUNK));
  };
  s.on('drain', go);
  go();
  return () => {
    stopped = true;
  };
}

/** Bytes received on `sockets` between `warmup` and `warmup + seconds`, in bytes per second. */
async function measure(receivers: Socket[], warmupSeconds: number, seconds: number): Promise<number> {
  let counting = false;
  let bytes = 0;
  for (const r of receivers) {
    r.on('data', (c: Buffer) => {
      if (counting) bytes += c.length;
    });
  }
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  return bytes / ((performance.now() - t0) / 1000);
}

async function oneRun(
  o: Options,
  publicPort: number,
  accepted: () => Promise<Socket[]>,
  connections: number,
  direction: 'upload' | 'download',
): Promise<number> {
  const visitors: Socket[] = [];
  const wait = accepted();
  for (let i = 0; i < connections; i++) {
    const s = connect({ host: '127.0.0.1', port: publicPort });
    s.on('error', () => {});
    await once(s, 'connect');
    visitors.push(s);
  }
  const services = await wait;
  const [senders, receivers] = direction === 'upload' ? [visitors, services] : [services, visitors];
  const stops = senders.map(pump);
  const rate = await measure(receivers, o.warmupSeconds, o.seconds);
  for (const stop of stops) stop();
  for (const s of [...visitors, ...services]) s.destroy();
  // Let the server see the closes before the next run.
  await new Promise((r) => setTimeout(r, 300));
  return rate;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), `mtt-bench-ratelimit-${process.pid}-`));
  const children: ChildProcess[] = [];
  let service: Server | undefined;
  try {
    const env = { ...process.env, MTT_CONFIG_DIR: dir };
    const clientKey = generateIdentity('bench');
    await writeIdentityFiles(path.join(dir, 'client_key'), clientKey);
    writeFileSync(path.join(dir, 'allowed_keys'), `${formatPublicKeyLine(clientKey.publicRaw, 'bench')}\n`, {
      mode: 0o600,
    });
    // The local service: hands each accepted socket to whoever waits for it.
    const queue: Socket[] = [];
    let waiter: (() => void) | undefined;
    service = createServer((s) => {
      s.on('error', () => {});
      queue.push(s);
      waiter?.();
    }).listen(0, '127.0.0.1');
    await once(service, 'listening');
    const accepted = (n: number) => async () => {
      while (queue.length < n) await new Promise<void>((r) => (waiter = r));
      return queue.splice(0, n);
    };
    const control = await freePort();
    const publicPort = await freePort();
    const server = await mtt(
      ['server', '--host', '127.0.0.1', '--port', String(control), '--public-host', '127.0.0.1'],
      env,
      'mtt server ready',
    );
    children.push(server);
    writeFileSync(
      path.join(dir, 'client.json'),
      JSON.stringify({
        server: `127.0.0.1:${control}`,
        identity: 'client_key',
        knownServers: 'known_servers',
        dataChannelPool: 8,
        tunnels: [
          {
            name: 'limited',
            remotePort: publicPort,
            localPort: (service.address() as AddressInfo).port,
            rateLimit: o.rateText,
            // The byte counts of the rate are those of the visitor's bytes, compressed or not.
            compress: false,
          },
        ],
      }),
    );
    children.push(
      await mtt(['client', '--config', path.join(dir, 'client.json')], env, '"msg":"tunnel active"'),
    );
    const rows: string[] = [];
    process.stdout.write(
      `rate limit ${o.rateText} (${o.rate} B/s) each way; ${o.seconds} s measured after ${o.warmupSeconds} s warm-up; median of ${o.runs}\n\n`,
    );
    rows.push('| connections | direction | measured (MB/s) | ratio to the set rate | runs |');
    rows.push('|---|---|---|---|---|');
    for (const connections of [1, 8]) {
      for (const direction of ['upload', 'download'] as const) {
        const rates: number[] = [];
        for (let r = 0; r < o.runs; r++) {
          rates.push(await oneRun(o, publicPort, accepted(connections), connections, direction));
        }
        const m = median(rates);
        rows.push(
          `| ${connections} | ${direction} | ${(m / 1e6).toFixed(3)} | ${(m / o.rate).toFixed(4)} | ${rates.map((x) => (x / o.rate).toFixed(3)).join(', ')} |`,
        );
      }
    }
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
    service?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench rate-limit: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
