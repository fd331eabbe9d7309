/**
 * The bench's own small programs, run as child processes so they never share an event loop with the
 * harness: `node dist/bench/helper.js MODE [--key value]…`. Each prints JSON lines on stdout and
 * exits when its stdin closes, so a dead harness leaves none behind.
 *
 * Modes:
 * - `echo`: echo server (the local service for RTT and many-connections).
 * - `http`: HTTP server with a small response (the local service for new connections).
 * - `stream-server`: the local service for compressible bulk; a client's first byte says what to do:
 *   'P' probe (answers 'p'), 'U' the client uploads (we count and print the result; 'u' is a
 *   warm-up, not printed), 'D' + u32 BE milliseconds: we send the corpus that long.
 * - `stream-client --port P --mode up|down --seconds S [--warmup-ms W]`: the external side of
 *   compressible bulk; prints the download result.
 * - `relay --port P --to Q`: a plain TCP relay (pipe both ways, no framing, no crypto): two of them
 *   in a row are the `node-relay` reference path, what two Node processes cost before any tunnel work.
 * - `hold --port P --targets 1000,10000 --concurrency C`: opens connections through the tunnel, each
 *   proven by a 1-byte echo, prints `{"reached":N}` at each target and waits for "next" on stdin;
 *   while opening, `{"progress":N,"open":K}` every 2 s (a tunnel slow to open many is not a stall).
 * - `ttfb --port P --count N`: N sequential new HTTP/1.1 connections (`Connection: close`), each
 *   timed from the start of connect() to the first byte of the answer; prints the samples in ms.
 *
 * Every mode takes `--host H`: where a server listens or where a client connects (default 127.0.0.1).
 */
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { jsonLogCorpus } from './corpus.js';

const CHUNK = 256 * 1024;

function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('--')) out.set(a.slice(2), argv[i + 1] ?? '');
  }
  return out;
}

const [mode, ...rest] = process.argv.slice(2);
const args = parseArgs(rest);
/** Where servers listen and clients connect (`--host`, default loopback). */
const HOST = args.get('host') || '127.0.0.1';

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function num(args: Map<string, string>, key: string, dflt: number): number {
  const v = args.get(key);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number`);
  return n;
}

function listen(server: net.Server, port: number): void {
  server.on('error', (err) => {
    emit({ error: err.message });
    process.exit(1);
  });
  server.listen({ port, host: HOST, backlog: 4096 }, () => {
    const addr = server.address();
    emit({ ready: true, port: typeof addr === 'object' && addr ? addr.port : 0 });
  });
}

/** Writes the corpus round and round for `seconds`, honouring backpressure, then ends the stream. */
function pump(sock: net.Socket, corpus: Buffer, seconds: number): void {
  const until = performance.now() + seconds * 1000;
  let off = 0;
  const go = () => {
    for (;;) {
      if (sock.destroyed) return;
      if (performance.now() >= until) {
        sock.end();
        return;
      }
      const chunk = corpus.subarray(off, off + CHUNK);
      off += CHUNK;
      if (off >= corpus.length) off = 0;
      if (!sock.write(chunk)) {
        sock.once('drain', go);
        return;
      }
    }
  };
  go();
}

/** Counts bytes until EOF; reports bytes and the time from the first to the last byte. */
function count(sock: net.Socket, skip: number, done: (r: { bytes: number; seconds: number }) => void): void {
  let bytes = -skip;
  let first = 0;
  let last = 0;
  sock.on('data', (d: Buffer) => {
    const now = performance.now();
    if (first === 0) first = now;
    last = now;
    bytes += d.length;
  });
  sock.on('end', () => {
    done({ bytes: Math.max(0, bytes), seconds: first ? (last - first) / 1000 : 0 });
    sock.end();
  });
}

function echo(args: Map<string, string>): void {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  listen(server, num(args, 'port', 0));
}

function relayServer(args: Map<string, string>): void {
  const to = num(args, 'to', 0);
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sock.setNoDelay(true);
    const up = net.connect({ host: HOST, port: to, allowHalfOpen: true, noDelay: true });
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
    sock.pipe(up);
    up.pipe(sock);
  });
  listen(server, num(args, 'port', 0));
}

function httpServer(args: Map<string, string>): void {
  const body = Buffer.from('ok\n');
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.on('clientError', (_err, sock) => sock.destroy());
  listen(server, num(args, 'port', 0));
}

function streamServer(args: Map<string, string>): void {
  const corpus = jsonLogCorpus(num(args, 'corpus-mib', 16) * 1024 * 1024);
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    let head = Buffer.alloc(0);
    const onHead = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const cmd = String.fromCharCode(head[0] ?? 0);
      if (cmd === 'P') {
        sock.off('data', onHead);
        sock.end('p');
      } else if (cmd === 'U' || cmd === 'u') {
        sock.off('data', onHead);
        // 'u' is a warm-up: counted the same way, not reported
        count(sock, 0, (r) => cmd === 'U' && emit({ result: { dir: 'up', ...r } }));
        sock.emit('data', head.subarray(1));
      } else if (cmd === 'D') {
        if (head.length < 5) return; // the duration (u32 BE ms) follows the command byte
        sock.off('data', onHead);
        sock.on('data', () => {});
        pump(sock, corpus, head.readUInt32BE(1) / 1000);
      } else {
        sock.destroy();
      }
    };
    sock.on('data', onHead);
  });
  listen(server, num(args, 'port', 0));
}

/** One transfer through `port`: upload for `ms`, or download for `ms`; resolves with what was received. */
function transfer(
  port: number,
  mode: string,
  ms: number,
  report: boolean,
  corpus: Buffer,
): Promise<{ bytes: number; seconds: number } | undefined> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: HOST });
    sock.on('error', reject);
    sock.on('connect', () => {
      if (mode === 'up') {
        sock.write(report ? 'U' : 'u');
        pump(sock, corpus, ms / 1000);
        sock.on('data', () => {});
        // the server ends its side once it has counted everything
        sock.on('end', () => resolve(undefined));
      } else {
        const cmd = Buffer.alloc(5);
        cmd.write('D');
        cmd.writeUInt32BE(ms, 1);
        sock.write(cmd);
        count(sock, 0, (r) => resolve(r));
      }
    });
  });
}

function streamClient(args: Map<string, string>): void {
  const port = num(args, 'port', 0);
  const seconds = num(args, 'seconds', 10);
  const warmupMs = num(args, 'warmup-ms', 0);
  const mode = args.get('mode') === 'up' ? 'up' : 'down';
  const corpus = mode === 'up' ? jsonLogCorpus(num(args, 'corpus-mib', 16) * 1024 * 1024) : Buffer.alloc(0);
  (async () => {
    // A fresh process is slow for its first few hundred megabytes (JIT, fresh pages): warm both ends.
    if (warmupMs > 0) await transfer(port, mode, warmupMs, false, corpus);
    const r = await transfer(port, mode, Math.round(seconds * 1000), true, corpus);
    emit(r ? { result: { dir: mode, ...r } } : { sent: true });
    process.exit(0);
  })().catch((err: unknown) => {
    emit({ error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}

function hold(args: Map<string, string>): void {
  const port = num(args, 'port', 0);
  const targets = (args.get('targets') ?? '1000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const concurrency = num(args, 'concurrency', 100);
  const timeoutMs = num(args, 'timeout-ms', 15000);
  const socks: net.Socket[] = [];
  let open = 0;
  let failed = 0;
  let lastError = '';

  const openOne = () =>
    new Promise<void>((resolve) => {
      const sock = net.connect({ port, host: HOST });
      let ok = false;
      let ended = false;
      const timer = setTimeout(() => fail('no echo within timeout'), timeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        if (ended) return;
        ended = true;
        if (!ok) {
          failed++;
          lastError = why;
          sock.destroy();
          resolve();
        } else {
          open--; // an established connection closed under us
          lastError = `closed after open: ${why}`;
        }
      };
      sock.on('connect', () => sock.write('h'));
      sock.once('data', () => {
        if (ok) return;
        ok = true;
        clearTimeout(timer);
        open++;
        socks.push(sock);
        resolve();
      });
      sock.on('error', (err) => fail(err.message));
      sock.on('close', () => fail('closed'));
    });

  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
    wake?.();
  });
  const nextCommand = () =>
    new Promise<void>((resolve) => {
      if (lines.length > 0) {
        lines.shift();
        resolve();
        return;
      }
      wake = () => {
        wake = undefined;
        lines.shift();
        resolve();
      };
    });

  (async () => {
    let started = 0;
    for (const target of targets) {
      const t0 = performance.now();
      const ticker = setInterval(() => emit({ progress: target, open, failed }), 2000);
      // Stop early when most attempts fail: the tunnel has hit a limit.
      while (started < target && failed <= Math.max(50, target / 10)) {
        const batch: Promise<void>[] = [];
        for (let i = 0; i < concurrency && started < target; i++, started++) batch.push(openOne());
        await Promise.all(batch);
      }
      clearInterval(ticker);
      emit({ reached: target, open, failed, lastError, seconds: (performance.now() - t0) / 1000 });
      await nextCommand();
    }
    emit({ done: true });
  })();
}

/** One new connection: ms from connect() to the first byte of the answer, and to its end. */
function oneRequest(port: number, timeoutMs: number): Promise<{ firstByteMs: number; connectMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let connectMs = 0;
    let firstByteMs = 0;
    const sock = net.connect({ port, host: HOST, noDelay: true });
    const timer = setTimeout(() => sock.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('connect', () => {
      connectMs = performance.now() - t0;
      sock.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    });
    let head = '';
    sock.on('data', (d: Buffer) => {
      if (firstByteMs === 0) firstByteMs = performance.now() - t0;
      if (head.length < 12) head += d.toString('latin1');
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      if (!head.startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${JSON.stringify(head)}`));
      else resolve({ firstByteMs, connectMs });
    });
  });
}

function ttfb(args: Map<string, string>): void {
  const port = num(args, 'port', 0);
  const count = num(args, 'count', 50);
  (async () => {
    const firstByte: number[] = [];
    const connect: number[] = [];
    for (let i = 0; i < count; i++) {
      const r = await oneRequest(port, num(args, 'timeout-ms', 10_000));
      firstByte.push(r.firstByteMs);
      connect.push(r.connectMs);
    }
    emit({ result: { firstByteMs: firstByte, connectMs: connect } });
    process.exit(0);
  })().catch((err: unknown) => {
    emit({ error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
if (mode !== 'hold') process.stdin.resume();
switch (mode) {
  case 'echo':
    echo(args);
    break;
  case 'http':
    httpServer(args);
    break;
  case 'stream-server':
    streamServer(args);
    break;
  case 'stream-client':
    streamClient(args);
    break;
  case 'hold':
    hold(args);
    break;
  case 'relay':
    relayServer(args);
    break;
  case 'ttfb':
    ttfb(args);
    break;
  default:
    process.stderr.write(`unknown helper mode: ${mode}\n`);
    process.exit(2);
}
