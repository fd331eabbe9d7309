/** Ports and readiness probes that prove bytes travel end to end (on loopback or inside a namespace). */
import net from 'node:net';
import { errorMessage, sleep, TimeoutError } from './procs.js';

/** The loopback address: every process of the loopback profile listens and connects here. */
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

/** Opens a TCP connection to host:port; resolves once connected. */
export type Dialer = (host: string, port: number) => Promise<net.Socket>;

/** A dialer for this process's own network (the host's loopback). */
export const hostDial: Dialer = (host, port) =>
  new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });

/** Where a probe connects, and how (from inside a network namespace, the dialer goes through it). */
export interface Target {
  host: string;
  port: number;
  dial: Dialer;
}

/** A loopback target on this host. */
export function loopbackTarget(port: number): Target {
  return { host: LOOPBACK, port, dial: hostDial };
}

/** One attempt to check that a service answers through a target; rejects when it does not. */
export type Probe = (target: Target, timeoutMs: number) => Promise<void>;

/** A probe that writes `send` and waits until what came back passes `ok`. */
export function exchangeProbe(send: Buffer, ok: (got: Buffer) => boolean): Probe {
  return (target, timeoutMs) =>
    new Promise<void>((resolve, reject) => {
      let sock: net.Socket | undefined;
      let got = Buffer.alloc(0);
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock?.destroy();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new TimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      target.dial(target.host, target.port).then(
        (s) => {
          if (settled) {
            s.destroy();
            return;
          }
          sock = s;
          s.setNoDelay(true);
          s.on('data', (d: Buffer) => {
            got = Buffer.concat([got, d]);
            if (ok(got)) finish();
          });
          s.on('error', (err) => finish(err));
          s.on('close', () =>
            finish(new Error(`closed after ${got.length} bytes without the expected answer`)),
          );
          s.write(send);
        },
        (err: Error) => finish(err),
      );
    });
}

/** For the echo helper: what is sent comes back. */
export const echoProbe: Probe = exchangeProbe(Buffer.from('mtt-bench-probe\n'), (got) => got.length >= 16);

/** For an HTTP server (the helper or nginx): a 200 answer to a GET. */
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

/** For sshd: its banner. */
export const sshBannerProbe: Probe = exchangeProbe(Buffer.alloc(0), (got) =>
  got.toString('latin1').startsWith('SSH-'),
);

/** Options for {@link waitReady}. */
export interface WaitReadyOptions {
  timeoutMs: number;
  /** What is being waited for, for the error message. */
  what: string;
  /** Returns a reason to give up at once (e.g. a tunnel process died). */
  failFast?: () => string | undefined;
}

/** Probes `target` until one probe succeeds; bounded by `timeoutMs`. */
export async function waitReady(target: Target, probe: Probe, opts: WaitReadyOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'never tried';
  for (;;) {
    const dead = opts.failFast?.();
    if (dead) throw new Error(`${opts.what}: ${dead}`);
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      await probe(target, Math.min(2000, Math.max(left, 50)));
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
