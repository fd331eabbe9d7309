/** Loopback helpers: free ports and readiness probes that prove bytes travel end to end. */
import net from 'node:net';
import { errorMessage, sleep, TimeoutError } from './procs.js';

/** The only address the bench ever connects to or listens on. */
export const LOOPBACK = '127.0.0.1';

/**
 * Ports the bench listens on when no range is given: below the ephemeral range (32768-60999 here),
 * so a port found free is not taken as the source port of some outgoing connection before the
 * service binds it (other test runs on the machine open many connections).
 */
export const BENCH_PORTS: [number, number] = [20000, 32000];

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, LOOPBACK, () => srv.close(() => resolve(true)));
  });
}

/** A free TCP port on loopback, picked at random inside [lo, hi] (default {@link BENCH_PORTS}). */
export async function freePort(range: [number, number] = BENCH_PORTS): Promise<number> {
  const [lo, hi] = range;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port found in ${lo}-${hi}`);
}

/** One attempt to check that a service answers through `port`; rejects when it does not. */
export type Probe = (port: number, timeoutMs: number) => Promise<void>;

/** A probe that writes `send` and waits until what came back passes `ok`. */
export function exchangeProbe(send: Buffer, ok: (got: Buffer) => boolean): Probe {
  return (port, timeoutMs) =>
    new Promise<void>((resolve, reject) => {
      const sock = net.connect({ port, host: LOOPBACK });
      let got = Buffer.alloc(0);
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new TimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      sock.setNoDelay(true);
      sock.on('connect', () => sock.write(send));
      sock.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (ok(got)) finish();
      });
      sock.on('error', (err) => finish(err));
      sock.on('close', () =>
        finish(new Error(`closed after ${got.length} bytes without the expected answer`)),
      );
    });
}

/** For the echo helper: what is sent comes back. */
export const echoProbe: Probe = exchangeProbe(Buffer.from('mtt-bench-probe\n'), (got) => got.length >= 16);

/** For the HTTP helper: a 200 answer to a GET. */
export const httpProbe: Probe = exchangeProbe(
  Buffer.from(`GET /probe HTTP/1.1\r\nHost: ${LOOPBACK}\r\nConnection: close\r\n\r\n`),
  (got) => got.toString('latin1').startsWith('HTTP/1.1 200'),
);

/** For the stream helper: 'P' is answered with 'p'. */
export const streamProbe: Probe = exchangeProbe(Buffer.from('P'), (got) => got[0] === 0x70);

/**
 * For an iperf3 server: a client's first bytes are a 37-byte cookie, answered with one state byte
 * (PARAM_EXCHANGE). The server then logs that it got no parameters and waits for the next client.
 */
export const iperfProbe: Probe = exchangeProbe(Buffer.alloc(37, 0x6d), (got) => got.length >= 1);

/** Options for {@link waitReady}. */
export interface WaitReadyOptions {
  timeoutMs: number;
  /** What is being waited for, for the error message. */
  what: string;
  /** Returns a reason to give up at once (e.g. a tunnel process died). */
  failFast?: () => string | undefined;
}

/** Probes `port` until one probe succeeds; bounded by `timeoutMs`. */
export async function waitReady(port: number, probe: Probe, opts: WaitReadyOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'never tried';
  for (;;) {
    const dead = opts.failFast?.();
    if (dead) throw new Error(`${opts.what}: ${dead}`);
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      await probe(port, Math.min(2000, Math.max(left, 50)));
      return;
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(100);
  }
  const dead = opts.failFast?.();
  if (dead) throw new Error(`${opts.what}: ${dead}`);
  throw new TimeoutError(`${opts.what}: not ready within ${opts.timeoutMs} ms (last probe: ${last})`);
}
