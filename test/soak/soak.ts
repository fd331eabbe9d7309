/**
 * `npm run soak [-- --minutes 30 --idle-minutes 5 | --quick]`: connection churn plus long transfers
 * through a real mtt server and client (two child processes, test/soak/child.ts), sampling each
 * process's RSS, heap used (reported by the process itself) and open fds every 10 s; then an idle
 * period; then a verdict from the heap used after a forced GC (and the fds), compared with the same
 * measure taken after warm-up. Exits 1 on a leak, on any failed request, or on a corrupted transfer.
 * Not part of `npm test`; CI runs it briefly (--quick).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPublicKeyLine, generateIdentity, writeIdentityFiles } from '../../src/identity/index.js';
import { MAX_IDLE_DATA_CHANNELS } from '../../src/protocol/limits.js';
import { freePort } from '../lib/free-port.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
const SAMPLE_MS = 10_000;
/**
 * Open fds may end above the baseline by the idle data channels a burst leaves pooled (the server
 * keeps at most MAX_IDLE_DATA_CHANNELS per session, one fd on each side) and a few more.
 */
const FD_SLACK = MAX_IDLE_DATA_CHANNELS + 8;

interface Options {
  minutes: number;
  idleMinutes: number;
  concurrency: number;
  streams: number;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { minutes: 30, idleMinutes: 5, concurrency: 20, streams: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => {
      const next = argv[++i];
      if (next === undefined || Number.isNaN(Number(next))) throw new Error(`${a} needs a number`);
      return Number(next);
    };
    if (a === '--minutes') o.minutes = v();
    else if (a === '--idle-minutes') o.idleMinutes = v();
    else if (a === '--concurrency') o.concurrency = v();
    else if (a === '--streams') o.streams = v();
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--quick') {
      o.minutes = 1;
      o.idleMinutes = 0.5;
    } else
      throw new Error(
        `unknown option ${a}; use --minutes N --idle-minutes N --concurrency N --streams N --json FILE --quick`,
      );
  }
  return o;
}

/** A child process that answers `mem` / `gc` with one JSON line each. */
class Side {
  readonly #p: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiters: Array<(line: string) => void> = [];
  constructor(
    readonly name: string,
    args: string[],
  ) {
    this.#p = spawn(process.execPath, ['--expose-gc', CHILD, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let buf = '';
    this.#p.stdout!.setEncoding('utf8');
    this.#p.stdout!.on('data', (c: string) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
  }
  get pid(): number {
    return this.#p.pid!;
  }
  next(ms = 30_000): Promise<Record<string, unknown>> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(JSON.parse(queued));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not answer within ${ms} ms`)), ms);
      this.#waiters.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
    });
  }
  async sample(gc = false): Promise<{ rss: number; heapUsed: number; fds: number }> {
    this.#p.stdin!.write(gc ? 'gc\n' : 'mem\n');
    const m = (await this.next()).mem as { rss: number; heapUsed: number };
    return { rss: m.rss, heapUsed: m.heapUsed, fds: readdirSync(`/proc/${this.pid}/fd`).length };
  }
  async stop(): Promise<void> {
    this.#p.stdin!.end();
    if (this.#p.exitCode === null)
      await Promise.race([once(this.#p, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
    if (this.#p.exitCode === null) this.#p.kill('SIGKILL');
  }
}

async function listen(onSocket: (s: Socket) => void): Promise<Server & { port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    onSocket(s);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

/** The long transfer's content: a deterministic 1 MiB block repeated. */
const BLOCK = createHash('sha512')
  .update('mtt soak')
  .digest()
  .toString('hex')
  .repeat(8192)
  .slice(0, 1024 * 1024);
const STREAM_MIB = 32;
const STREAM_SHA = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < STREAM_MIB; i++) h.update(BLOCK);
  return h.digest('hex');
})();

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'mtt-soak-'));
  const host = generateIdentity('soak-host');
  const client = generateIdentity('soak-client');
  await writeIdentityFiles(join(dir, 'host_key'), host);
  await writeIdentityFiles(join(dir, 'client_key'), client);
  writeFileSync(join(dir, 'client.pub'), `${formatPublicKeyLine(client.publicRaw, 'soak')}\n`);
  writeFileSync(join(dir, 'host.pub'), `${formatPublicKeyLine(host.publicRaw, 'soak')}\n`);

  // The local service: "S" asks for a long transfer, anything else is one small request.
  const target = await listen((s) => {
    s.once('data', (first: Buffer) => {
      if (first[0] === 0x53) {
        let i = 0;
        const pump = () => {
          while (i < STREAM_MIB) {
            i += 1;
            if (!s.write(BLOCK)) return void s.once('drain', pump);
          }
          s.end();
        };
        pump();
      } else {
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
      }
    });
  });
  const port = await freePort();
  const remotePort = await freePort();
  const cfg = JSON.stringify({
    port,
    hostKey: join(dir, 'host_key'),
    clientKey: join(dir, 'client_key'),
    clientPub: join(dir, 'client.pub'),
    hostPub: join(dir, 'host.pub'),
    remotePort,
    localPort: target.port,
  });
  const server = new Side('server', ['server', cfg]);
  await server.next();
  const clientSide = new Side('client', ['client', cfg]);
  await clientSide.next();

  let requests = 0;
  let failures = 0;
  let transfers = 0;
  let corrupted = 0;
  let running = true;
  const request = () =>
    new Promise<void>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: remotePort });
      let got = '';
      s.setEncoding('utf8');
      s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n'));
      s.on('data', (c: string) => {
        got += c;
      });
      s.on('error', () => {});
      s.on('close', () => {
        if (got.endsWith('hello')) requests += 1;
        else failures += 1;
        resolve();
      });
    });
  const transfer = () =>
    new Promise<void>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: remotePort });
      const h = createHash('sha256');
      let n = 0;
      s.on('connect', () => s.write('S'));
      s.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      s.on('error', () => {});
      s.on('close', () => {
        if (n === STREAM_MIB * 1024 * 1024 && h.digest('hex') === STREAM_SHA) transfers += 1;
        else corrupted += 1;
        resolve();
      });
    });
  const loop = async (fn: () => Promise<void>) => {
    while (running) await fn();
  };

  // Warm up, then the baseline: heap used after a full GC, fds, with nothing in flight.
  for (let i = 0; i < 200; i++) await request();
  await new Promise((r) => setTimeout(r, 2000));
  const base = { server: await server.sample(true), client: await clientSide.sample(true) };
  const samples: unknown[] = [];
  const mb = (n: number) => (n / 1048576).toFixed(1);
  const line = (
    phase: string,
    s: Awaited<ReturnType<Side['sample']>>,
    c: Awaited<ReturnType<Side['sample']>>,
  ) =>
    `${phase.padEnd(5)} ${String(Math.round((Date.now() - t0) / 1000)).padStart(5)} s  server rss ${mb(s.rss)} heap ${mb(s.heapUsed)} fds ${s.fds}   client rss ${mb(c.rss)} heap ${mb(c.heapUsed)} fds ${c.fds}   requests ${requests} failed ${failures} transfers ${transfers} bad ${corrupted}`;
  const t0 = Date.now();
  console.log(
    `soak: ${o.minutes} min of churn (${o.concurrency} at once) and ${o.streams} long transfers (${STREAM_MIB} MiB each, again and again), then ${o.idleMinutes} min idle; a sample every ${SAMPLE_MS / 1000} s`,
  );
  console.log(line('base', base.server, base.client));
  const load = [
    ...Array.from({ length: o.concurrency }, () => loop(request)),
    ...Array.from({ length: o.streams }, () => loop(transfer)),
  ];
  const sampleFor = async (phase: string, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, Math.max(0, end - Date.now()))));
      const s = await server.sample();
      const c = await clientSide.sample();
      samples.push({
        t: Date.now() - t0,
        phase,
        server: s,
        client: c,
        requests,
        failures,
        transfers,
        corrupted,
      });
      console.log(line(phase, s, c));
    }
  };
  await sampleFor('load', o.minutes * 60_000);
  running = false;
  await Promise.all(load);
  await sampleFor('idle', o.idleMinutes * 60_000);
  const end = { server: await server.sample(true), client: await clientSide.sample(true) };
  console.log(line('gc', end.server, end.client));

  // A leak grows with the load; V8 keeping its heap does not survive a full GC.
  const verdicts: string[] = [];
  for (const side of ['server', 'client'] as const) {
    const all = samples as Array<Record<typeof side, Awaited<ReturnType<Side['sample']>>>>;
    const peak = (k: 'rss' | 'heapUsed' | 'fds') => Math.max(base[side][k], ...all.map((x) => x[side][k]));
    console.log(
      `${side}: start / peak / end: rss ${mb(base[side].rss)} / ${mb(peak('rss'))} / ${mb(end[side].rss)} MB, heap used ${mb(base[side].heapUsed)} / ${mb(peak('heapUsed'))} / ${mb(end[side].heapUsed)} MB (start and end after a forced GC), fds ${base[side].fds} / ${peak('fds')} / ${end[side].fds}`,
    );
    const grew = end[side].heapUsed - base[side].heapUsed;
    const allowed = Math.max(8 * 1048576, base[side].heapUsed * 0.5);
    verdicts.push(
      `${side}: heap used after GC ${mb(base[side].heapUsed)} -> ${mb(end[side].heapUsed)} MB (${grew >= 0 ? '+' : ''}${mb(grew)}, allowed +${mb(allowed)}); fds ${base[side].fds} -> ${end[side].fds}; rss ${mb(base[side].rss)} -> ${mb(end[side].rss)} MB` +
        (grew > allowed || end[side].fds > base[side].fds + FD_SLACK ? '  LEAK' : '  ok'),
    );
  }
  const ok =
    verdicts.every((v) => v.endsWith('ok')) &&
    failures === 0 &&
    corrupted === 0 &&
    requests > 0 &&
    transfers > 0;
  for (const v of verdicts) console.log(v);
  console.log(
    `${requests} requests (${failures} failed), ${transfers} transfers of ${STREAM_MIB} MiB (${corrupted} bad) in ${o.minutes} min: ${ok ? 'PASS' : 'FAIL'}`,
  );
  if (o.json) {
    writeFileSync(
      o.json,
      `${JSON.stringify({ options: o, base, end, requests, failures, transfers, corrupted, ok, samples }, null, 1)}\n`,
    );
  }
  await clientSide.stop();
  await server.stop();
  target.close();
  rmSync(dir, { recursive: true, force: true });
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`soak: ${err.message}`);
    process.exit(2);
  },
);
