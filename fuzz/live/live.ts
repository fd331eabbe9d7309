/**
 * The live campaign: mutated handshakes into a real server (a child process, real TCP on loopback,
 * many connections at once from other loopback addresses), while a legitimate client keeps a tunnel
 * open through the same server and a probe sends bytes through it all along. Findings: the server
 * process exits, a connection it leaves open past the handshake limits, a probe that fails, the
 * legitimate client losing its session, the server's heap growing.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MttClient, startClient } from '../../src/client/index.js';
import { formatPublicKeyLine, generateIdentity } from '../../src/identity/index.js';
import {
  CHANNEL_WAIT_TIMEOUT_MS,
  FIRST_FRAME_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_MS,
  MAX_UNAUTHENTICATED_PER_SOURCE,
} from '../../src/protocol/limits.js';
import { type ClientMessage, decodeServerMessage, type ServerMessage } from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import { runClientHandshake } from '../../src/transport/handshake.js';
import { freePort } from '../../test/lib/free-port.js';
import { deepestStack, describeError, isHarnessBug, signatureOf } from '../lib/outcome.js';
import { identityOf } from '../lib/peer.js';
import { fmtInt, fmtMiB } from '../lib/report.js';
import type { Finding } from '../lib/runner.js';
import { toJson } from '../lib/target.js';
import { type CaseResult, type LiveContext, runLiveCase } from './cases.js';
import type { ChildConfig, ChildMessage } from './server-child.js';
import { runSessionCase, SESSION_KEY_SEED, type SessionContext, type SessionResult } from './session.js';

/** Options of one live campaign. */
export interface LiveOptions {
  seed: number;
  /** Number of handshakes, or undefined to run until `deadline`. */
  handshakes: number | undefined;
  deadline: number | undefined;
  concurrency: number;
  record: (f: Finding) => void;
}

/** What a live campaign measured. */
export interface LiveResult {
  text: string;
  handshakes: number;
  serverPeakRss: number;
  summary: LiveSummary;
}

/** The live figures, as JSON. */
export interface LiveSummary {
  handshakes: number;
  byKind: Record<string, number>;
  byEnd: Record<string, number>;
  durationMs: number;
  concurrency: number;
  sources: string[];
  closeMs: { p50: number; p99: number; max: number };
  stalls: { count: number; maxMs: number; limitMs: number };
  heldAfterFin: number;
  /** Cases held open once (a stalled machine) that closed in time when sent again. */
  slowOnce: number;
  probes: { ok: number; failed: number; p50Ms: number; p99Ms: number; maxMs: number };
  clientDisconnects: number;
  finalProbeOk: boolean;
  serverAlive: boolean;
  serverPeakRss: number;
  serverHeapGrowth: number | undefined;
  serverLogLines: number;
  session: SessionSummary;
}

/** Figures of the session campaign. */
export interface SessionSummary {
  cases: number;
  logins: Record<string, number>;
  messages: number;
  tunnelsOpened: number;
  channelsProven: number;
  visitorsAssigned: number;
  leftOpen: number;
  finalLoginOk: boolean;
  serverAlive: boolean;
  serverPeakRss: number;
  serverHeapGrowth: number | undefined;
}

const PROBE_EVERY_MS = 500;
const PROBE_TIMEOUT_MS = 5000;
/** Margin over the handshake limit before an open connection counts as hung (a loaded machine). */
const HANG_MARGIN_MS = 3000;
const LEAK_BYTES = 32 * 2 ** 20;
const HEAP_WARMUP = 2000;
/** Progress lines (with the server's memory) every this many handshakes. */
const progressEvery = Number(process.env.MTT_FUZZ_PROGRESS ?? 20_000);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The server child: started, asked for figures, stopped. */
class ServerChild {
  readonly proc: ChildProcess;
  stderr = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #pending: Array<(m: ChildMessage) => void> = [];

  constructor(config: ChildConfig) {
    const script = fileURLToPath(new URL('./server-child.js', import.meta.url));
    this.proc = fork(script, [JSON.stringify(config)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.proc.stderr!.on('data', (c: Buffer) => {
      this.stderr = (this.stderr + c.toString()).slice(-8000);
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = { code, signal };
    });
    this.proc.on('message', (m: ChildMessage) => this.#pending.shift()?.(m));
  }

  next(timeoutMs = 20_000): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the server child did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`the server child exited (${this.stderr.slice(-2000)})`));
      };
      this.#pending.push((m) => {
        clearTimeout(timer);
        this.proc.off('exit', onExit);
        resolve(m);
      });
      this.proc.once('exit', onExit);
    });
  }

  async stats(gc = true): Promise<Extract<ChildMessage, { type: 'stats' }> | undefined> {
    if (this.exited) return undefined;
    this.proc.send({ type: 'stats', gc });
    const m = await this.next().catch(() => undefined);
    return m?.type === 'stats' ? m : undefined;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.proc.send({ type: 'stop' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await once(this.proc, 'exit').catch(() => {});
    clearTimeout(timer);
  }
}

/** Loopback source addresses this machine lets us bind (127.0.0.2 … 127.0.0.9), else 127.0.0.1. */
async function sourceAddresses(): Promise<string[]> {
  const ok: string[] = [];
  for (let i = 2; i <= 9; i++) {
    const addr = `127.0.0.${i}`;
    const s = createServer();
    try {
      s.listen({ host: addr, port: 0 });
      await once(s, 'listening');
      ok.push(addr);
    } catch {
      // Not bindable here.
    } finally {
      s.close();
    }
  }
  return ok.length > 0 ? ok : ['127.0.0.1'];
}

async function listenEcho(): Promise<Server & { port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

/** Sends bytes through the tunnel and waits for the echo; resolves with the time, or an error. */
function probe(port: number): Promise<{ ms: number } | { error: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const payload = randomBytes(64);
    const chunks: Buffer[] = [];
    let got = 0;
    const s = connect({ host: '127.0.0.1', port });
    const done = (r: { ms: number } | { error: string }) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => done({ error: `no echo within ${PROBE_TIMEOUT_MS} ms` }),
      PROBE_TIMEOUT_MS,
    );
    s.on('connect', () => s.write(payload));
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= payload.length) {
        const back = Buffer.concat(chunks);
        done(
          back.subarray(0, payload.length).equals(payload)
            ? { ms: Date.now() - t0 }
            : { error: 'the echo came back changed' },
        );
      }
    });
    s.on('error', (err) => done({ error: err.message }));
    s.on('close', () => {
      if (got < payload.length) done({ error: `closed after ${got} of ${payload.length} bytes` });
    });
  });
}

/** A running target: server child, echo service, legitimate client with one tunnel. */
interface Rig {
  dir: string;
  child: ServerChild;
  echo: Server & { port: number };
  client: MttClient;
  tunnelPort: number;
  serverPort: number;
  close(): Promise<void>;
}

async function startRig(): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), `mtt-fuzz-live-${process.pid}-`));
  const identity = generateIdentity('fuzz-legit');
  const child = new ServerChild({
    dir,
    allowed: formatPublicKeyLine(identity.publicRaw, 'legit'),
    format: 'pretty',
  });
  let ready: ChildMessage;
  try {
    ready = await child.next();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  if (ready.type !== 'ready') throw new Error('the server child did not start');
  const echo = await listenEcho();
  const tunnelPort = await freePort();
  const client = startClient({
    host: '127.0.0.1',
    port: ready.port,
    identity,
    serverKey: ready.publicKeyLine,
    tunnels: [{ name: 'fuzz-probe', remotePort: tunnelPort, localHost: '127.0.0.1', localPort: echo.port }],
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
  });
  const close = async () => {
    await client.close();
    await child.stop();
    echo.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await client.waitFor(
      (s) => s.connection.kind === 'connected' && s.tunnels.every((t) => t.status === 'active'),
      15_000,
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { dir, child, echo, client, tunnelPort, serverPort: ready.port, close };
}

function finding(
  kind: Finding['kind'],
  seed: number,
  index: number,
  error: string,
  detail?: unknown,
): Finding {
  return {
    kind,
    target: 'live-server',
    seed,
    index,
    signature: `${kind} live-server ${error.replace(/\d+/g, 'N').slice(0, 120)}`,
    error,
    stack: '',
    input: { seed, index },
    detail: toJson(detail),
  };
}

/**
 * A live or session case whose own code threw. A JavaScript bug raised in fuzz/ is the harness's
 * (kind `harness`, reported apart, the run still fails); anything else, an error from src/ on the
 * client side of the case included, stays a crash finding.
 */
export function caseFailed(target: string, seed: number, index: number, err: unknown): Finding {
  const harness = isHarnessBug(err);
  const kind = harness ? 'harness' : 'crash';
  return {
    ...finding(
      kind,
      seed,
      index,
      harness
        ? `the fuzzer's ${target} case code failed (a bug in fuzz/, not in mtt): ${describeError(err)}`
        : `the ${target} case failed: ${describeError(err)}`,
    ),
    target,
    signature: `${signatureOf(kind, err)} (${target})`,
    stack: deepestStack(err),
  };
}

const SESSION_SERVERS = 2;

function mergeSessions(all: SessionSummary[]): SessionSummary {
  const out = { ...all[0]!, logins: { ...all[0]!.logins } };
  for (const x of all.slice(1)) {
    out.cases += x.cases;
    for (const [k, n] of Object.entries(x.logins)) out.logins[k] = (out.logins[k] ?? 0) + n;
    out.messages += x.messages;
    out.tunnelsOpened += x.tunnelsOpened;
    out.channelsProven += x.channelsProven;
    out.visitorsAssigned += x.visitorsAssigned;
    out.leftOpen += x.leftOpen;
    out.finalLoginOk &&= x.finalLoginOk;
    out.serverAlive &&= x.serverAlive;
    out.serverPeakRss = Math.max(out.serverPeakRss, x.serverPeakRss);
    out.serverHeapGrowth =
      out.serverHeapGrowth === undefined || x.serverHeapGrowth === undefined
        ? undefined
        : Math.max(out.serverHeapGrowth, x.serverHeapGrowth);
  }
  return out;
}

/**
 * A server for session cases in a folder of its own, the session key allowed, tunnel ports
 * `low`..`low + 9`; `close()` stops it and removes the folder.
 */
function sessionServer(low: number) {
  const dir = mkdtempSync(join(tmpdir(), `mtt-fuzz-session-${process.pid}-`));
  const ports = { low, high: low + 9 };
  const child = new ServerChild({
    dir,
    allowed: formatPublicKeyLine(identityOf(SESSION_KEY_SEED).publicRaw, 'fuzz-session'),
    allowPorts: ports,
    format: 'json',
  });
  const close = async () => {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { child, ports, close };
}

/** Runs session cases one after another on a second server until `stop()`. */
async function runSessions(
  o: LiveOptions,
  stop: () => boolean,
  report: (f: Finding) => void,
  lane: number,
  lanes: number,
): Promise<SessionSummary> {
  // Tunnel ports of its own, below the ephemeral range, so as not to meet other tests' ports.
  const server = sessionServer(20_000 + ((o.seed + process.pid + lane * 7) % 1000) * 10);
  const { child, ports: ctxPorts } = server;
  const s: SessionSummary = {
    cases: 0,
    logins: {},
    messages: 0,
    tunnelsOpened: 0,
    channelsProven: 0,
    visitorsAssigned: 0,
    leftOpen: 0,
    finalLoginOk: false,
    serverAlive: false,
    serverPeakRss: 0,
    serverHeapGrowth: undefined,
  };
  try {
    const ready = await child.next();
    if (ready.type !== 'ready') throw new Error('the session server did not start');
    const ctx: SessionContext = { port: ready.port, ports: ctxPorts };
    let heapStart: number | undefined;
    const pendingChecks: Promise<void>[] = [];
    for (let index = lane; !stop() && !child.exited; index += lanes) {
      let r: SessionResult;
      try {
        r = await runSessionCase(o.seed, index, ctx);
      } catch (err) {
        report(caseFailed('live-session', o.seed, index, err));
        continue;
      }
      s.cases++;
      s.logins[r.login] = (s.logins[r.login] ?? 0) + 1;
      s.messages += r.messages;
      s.tunnelsOpened += r.tunnelsOpened;
      s.channelsProven += r.channelsProven;
      s.visitorsAssigned += r.visitorsAssigned;
      pendingChecks.push(
        r.leftOpen.then((left) => {
          s.leftOpen += left;
          if (left > 0) {
            report({
              ...finding(
                'hang',
                o.seed,
                index,
                `${left} data channel(s) still open ${CHANNEL_WAIT_TIMEOUT_MS} ms after their session ended`,
                {
                  steps: r.log,
                },
              ),
              target: 'live-session',
            });
          }
        }),
      );
      if (pendingChecks.length > 64) await Promise.all(pendingChecks.splice(0));
      if (child.exited) {
        report({
          ...finding(
            'server-down',
            o.seed,
            index,
            `the session server exited (${JSON.stringify(child.exited)}) during session case ${index}`,
            { stderr: child.stderr, steps: r.log },
          ),
          target: 'live-session',
        });
      }
      if (s.cases === 200) heapStart = (await child.stats())?.heapUsed;
    }
    await Promise.all(pendingChecks);
    s.serverAlive = child.exited === undefined;
    if (s.serverAlive) {
      // A clean login still works after it all.
      const sock = connect({ host: '127.0.0.1', port: ctx.port });
      sock.on('error', () => {});
      const conn = new FramedConnection<ServerMessage, ClientMessage>(sock, decodeServerMessage);
      try {
        await runClientHandshake(conn, {
          identity: identityOf(SESSION_KEY_SEED),
          checkServerKey: () => {},
          timeoutMs: 10_000,
        });
        s.finalLoginOk = true;
      } catch (err) {
        report({
          ...finding(
            'legit-client',
            o.seed,
            -1,
            `a clean login to the session server failed after the campaign: ${(err as Error).message}`,
          ),
          target: 'live-session',
        });
      } finally {
        conn.close();
      }
      const stats = await child.stats();
      s.serverPeakRss = stats?.maxRss ?? 0;
      if (stats && heapStart !== undefined) s.serverHeapGrowth = stats.heapUsed - heapStart;
      if (s.serverHeapGrowth !== undefined && s.serverHeapGrowth > LEAK_BYTES) {
        report({
          ...finding(
            'leak',
            o.seed,
            -1,
            `the session server's heap grew by ${fmtMiB(s.serverHeapGrowth)} after GC over ${fmtInt(s.cases)} sessions`,
          ),
          target: 'live-session',
        });
      }
    } else if (s.cases > 0) {
      report({
        ...finding('server-down', o.seed, -1, `the session server exited: ${child.stderr.slice(-2000)}`),
        target: 'live-session',
      });
    }
  } finally {
    await server.close();
  }
  return s;
}

/** Runs the live campaign. */
export async function runLive(o: LiveOptions): Promise<LiveResult> {
  const t0 = Date.now();
  const sources = await sourceAddresses();
  const rig = await startRig();
  const limitMs = HANDSHAKE_TIMEOUT_MS + HANG_MARGIN_MS;
  const firstFrameLimitMs = FIRST_FRAME_TIMEOUT_MS + HANG_MARGIN_MS;
  const ctx: LiveContext = {
    port: rig.serverPort,
    sources,
    limitMs,
    firstFrameLimitMs,
    inflight: new Map(),
    perSource: MAX_UNAUTHENTICATED_PER_SOURCE,
    stallsLeft: Math.max(2, Math.floor(o.concurrency / 4)),
  };
  process.stdout.write(
    `  live-server: server pid ${rig.child.proc.pid} on 127.0.0.1:${rig.serverPort}, legitimate tunnel on :${rig.tunnelPort}; ` +
      `${o.concurrency} connections at once from ${sources.join(', ')}\n`,
  );
  const byKind: Record<string, number> = {};
  const byEnd: Record<string, number> = {};
  const closeTimes: number[] = [];
  const probeTimes: number[] = [];
  let probesFailed = 0;
  let stalls = 0;
  let stallMax = 0;
  let heldAfterFin = 0;
  let disconnects = 0;
  let serverDown = false;
  const reported = new Map<string, number>();
  const report = (f: Finding) => {
    const n = (reported.get(f.signature) ?? 0) + 1;
    reported.set(f.signature, n);
    if (n <= 3) o.record(f);
  };

  let wasConnected = true;
  const onChange = () => {
    const connected = rig.client.state.snapshot().connection.kind === 'connected';
    if (wasConnected && !connected) {
      disconnects++;
      report(
        finding(
          'legit-client',
          o.seed,
          -1,
          `the legitimate client lost its session: ${JSON.stringify(rig.client.state.snapshot().connection)}`,
        ),
      );
    }
    wasConnected = connected;
  };
  rig.client.state.on('change', onChange);

  let stopping = false;
  const probeLoop = (async () => {
    while (!stopping && !serverDown) {
      const r = await probe(rig.tunnelPort);
      if ('ms' in r) probeTimes.push(r.ms);
      else {
        probesFailed++;
        report(
          finding('legit-client', o.seed, -1, `a probe through the legitimate tunnel failed: ${r.error}`),
        );
      }
      await new Promise((res) => setTimeout(res, PROBE_EVERY_MS));
    }
  })();

  let heapStart: number | undefined;
  let slowOnce = 0;
  let next = 0;
  let completed = 0;
  const more = () =>
    !serverDown && (o.handshakes !== undefined ? next < o.handshakes : Date.now() < (o.deadline ?? 0));
  const worker = async () => {
    while (more()) {
      const index = next++;
      let r: CaseResult;
      try {
        r = await runLiveCase(o.seed, index, ctx);
      } catch (err) {
        report(caseFailed('live-server', o.seed, index, err));
        continue;
      }
      // A machine under load can stall the server for a second: a connection held open is a finding
      // only if the same case, sent again at once, is held again.
      if (r.heldAfterFin || r.end === 'hang') {
        const again = await runLiveCase(o.seed, index, ctx).catch(() => undefined);
        if (again && !again.heldAfterFin && again.end !== 'hang') {
          slowOnce++;
          r = { ...r, heldAfterFin: false, end: r.end === 'hang' ? 'stall-closed' : 'closed-after-fin' };
        }
      }
      completed++;
      byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
      byEnd[r.end] = (byEnd[r.end] ?? 0) + 1;
      if (r.closeMs !== undefined) closeTimes.push(r.closeMs);
      if (r.stalled) {
        stalls++;
        stallMax = Math.max(stallMax, r.openMs);
      }
      if (r.heldAfterFin) {
        heldAfterFin++;
        report(
          finding(
            'hang',
            o.seed,
            index,
            `a ${r.kind} connection was still open 1000 ms after our FIN (a stream that ends must close at once)`,
            {
              sent: r.sent,
            },
          ),
        );
      }
      if (r.end === 'hang') {
        report(
          finding(
            'hang',
            o.seed,
            index,
            `the server left a ${r.kind} connection open for ${r.openMs} ms (limit ${limitMs} ms)`,
            { sent: r.sent },
          ),
        );
      }
      if (r.end === 'refused' && rig.child.exited) {
        serverDown = true;
        report(
          finding(
            'server-down',
            o.seed,
            index,
            `the server process exited (${JSON.stringify(rig.child.exited)}) during case ${index}`,
            { stderr: rig.child.stderr, sent: r.sent },
          ),
        );
      }
      if (completed === HEAP_WARMUP) heapStart = (await rig.child.stats())?.heapUsed;
      if (completed % progressEvery === 0) {
        const m = await rig.child.stats(false);
        process.stdout.write(
          `  live-server: ${fmtInt(completed)} handshakes, ${probeTimes.length} probes ok, ${probesFailed} failed; ` +
            `server RSS ${m ? fmtMiB(m.rss) : '?'} (heap ${m ? fmtMiB(m.heapUsed) : '?'}, buffers ${m ? fmtMiB(m.arrayBuffers) : '?'})\n`,
        );
      }
    }
  };
  // Sessions of one key are one at a time per server, so a few servers run side by side.
  const sessions = Promise.all(
    Array.from({ length: SESSION_SERVERS }, (_, lane) =>
      runSessions(o, () => stopping || serverDown, report, lane, SESSION_SERVERS),
    ),
  ).then(mergeSessions);
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  stopping = true;
  await probeLoop;
  const session = await sessions;
  rig.client.state.off('change', onChange);

  // The end: the server is up, the legitimate client is still connected and its tunnel carries bytes.
  const serverAlive = rig.child.exited === undefined;
  if (!serverAlive && !serverDown)
    report(finding('server-down', o.seed, -1, `the server process exited: ${rig.child.stderr.slice(-2000)}`));
  let finalProbeOk = false;
  if (serverAlive) {
    const r = await probe(rig.tunnelPort);
    finalProbeOk = 'ms' in r && rig.client.state.snapshot().connection.kind === 'connected';
    if (!finalProbeOk)
      report(
        finding(
          'legit-client',
          o.seed,
          -1,
          `the final probe failed: ${'error' in r ? r.error : 'client not connected'}`,
        ),
      );
  }
  const stats = await rig.child.stats();
  const serverHeapGrowth = stats && heapStart !== undefined ? stats.heapUsed - heapStart : undefined;
  if (serverHeapGrowth !== undefined && serverHeapGrowth > LEAK_BYTES) {
    report(
      finding(
        'leak',
        o.seed,
        -1,
        `the server's heap grew by ${fmtMiB(serverHeapGrowth)} after GC over ${fmtInt(completed - HEAP_WARMUP)} handshakes`,
      ),
    );
  }
  const serverPeakRss = stats?.maxRss ?? 0;
  await rig.close();

  closeTimes.sort((a, b) => a - b);
  probeTimes.sort((a, b) => a - b);
  const durationMs = Date.now() - t0;
  const summary: LiveSummary = {
    handshakes: completed,
    byKind,
    byEnd,
    durationMs,
    concurrency: o.concurrency,
    sources,
    closeMs: {
      p50: percentile(closeTimes, 50),
      p99: percentile(closeTimes, 99),
      max: closeTimes[closeTimes.length - 1] ?? 0,
    },
    stalls: { count: stalls, maxMs: stallMax, limitMs: firstFrameLimitMs },
    heldAfterFin,
    slowOnce,
    probes: {
      ok: probeTimes.length,
      failed: probesFailed,
      p50Ms: percentile(probeTimes, 50),
      p99Ms: percentile(probeTimes, 99),
      maxMs: probeTimes[probeTimes.length - 1] ?? 0,
    },
    clientDisconnects: disconnects,
    finalProbeOk,
    serverAlive,
    serverPeakRss,
    serverHeapGrowth,
    serverLogLines: stats?.logLines ?? 0,
    session,
  };
  const kinds = Object.entries(byKind)
    .map(([k, n]) => `${k} ${fmtInt(n)}`)
    .join(', ');
  const ends = Object.entries(byEnd)
    .map(([k, n]) => `${k} ${fmtInt(n)}`)
    .join(', ');
  const text =
    `live-server: ${fmtInt(completed)} mutated handshakes in ${(durationMs / 1000).toFixed(1)} s (${fmtInt(completed / Math.max(0.001, durationMs / 1000))}/s), ${o.concurrency} at once\n` +
    `  by kind: ${kinds}\n  how they ended: ${ends}\n` +
    `  server closed them after p50 ${summary.closeMs.p50} ms, p99 ${summary.closeMs.p99} ms, max ${summary.closeMs.max} ms; ` +
    `${stalls} silent or dripping connections closed by the first-frame deadline (longest ${stallMax} ms, limit ${firstFrameLimitMs} ms); ` +
    `${heldAfterFin} still open 1 s after our FIN (${slowOnce} more were slow once but not when sent again)\n` +
    `  server: ${serverAlive ? 'up' : 'DOWN'}, peak RSS ${fmtMiB(serverPeakRss)}, heap growth after GC ${serverHeapGrowth === undefined ? 'n/a' : fmtMiB(serverHeapGrowth)}, ${fmtInt(summary.serverLogLines)} log lines\n` +
    `  legitimate client: ${probeTimes.length} probes through its tunnel ok, ${probesFailed} failed (p50 ${summary.probes.p50Ms} ms, p99 ${summary.probes.p99Ms} ms, max ${summary.probes.maxMs} ms), ` +
    `${disconnects} disconnects, final probe ${finalProbeOk ? 'ok' : 'FAILED'}\n` +
    `live-session: ${fmtInt(session.cases)} logged-in sessions on ${SESSION_SERVERS} more servers (${Object.entries(
      session.logins,
    )
      .map(([k, n]) => `${k} ${fmtInt(n)}`)
      .join(', ')}): ` +
    `${fmtInt(session.messages)} control messages, ${fmtInt(session.tunnelsOpened)} tunnels opened, ${fmtInt(session.channelsProven)} data channels proven, ` +
    `${fmtInt(session.visitorsAssigned)} visitors assigned; ${session.leftOpen} channels left open after their session; ` +
    `server ${session.serverAlive ? 'up' : 'DOWN'}, peak RSS ${fmtMiB(session.serverPeakRss)}, heap growth ${session.serverHeapGrowth === undefined ? 'n/a' : fmtMiB(session.serverHeapGrowth)}; ` +
    `clean login at the end ${session.finalLoginOk ? 'ok' : 'FAILED'}`;
  return { text, handshakes: completed, serverPeakRss, summary };
}

/** Prints a case that threw in a replay; 3 for a harness error, 1 for a finding (as the campaign). */
function replayFailed(f: Finding): number {
  process.stdout.write(`reproduced: ${f.kind}: ${f.error}\n${f.stack}\n`);
  return f.kind === 'harness' ? 3 : 1;
}

/** Re-runs one live case against a fresh server; 1 when the finding shows again. */
export async function replayLive(f: Pick<Finding, 'seed' | 'index'>): Promise<number> {
  if (f.index < 0) {
    process.stdout.write(
      'this finding is about the whole run (not one case): re-run the campaign with its seed\n',
    );
    return 0;
  }
  const sources = await sourceAddresses();
  const rig = await startRig();
  const ctx: LiveContext = {
    port: rig.serverPort,
    sources,
    limitMs: HANDSHAKE_TIMEOUT_MS + HANG_MARGIN_MS,
    firstFrameLimitMs: FIRST_FRAME_TIMEOUT_MS + HANG_MARGIN_MS,
    inflight: new Map(),
    perSource: MAX_UNAUTHENTICATED_PER_SOURCE,
    stallsLeft: 1,
  };
  let r: CaseResult;
  try {
    r = await runLiveCase(f.seed, f.index, ctx);
  } catch (err) {
    await rig.close();
    return replayFailed(caseFailed('live-server', f.seed, f.index, err));
  }
  await new Promise((res) => setTimeout(res, 200));
  const alive = rig.child.exited === undefined;
  const p = alive ? await probe(rig.tunnelPort) : { error: 'server down' };
  process.stdout.write(
    `case ${f.index} (seed ${f.seed}): ${r.kind}, ended ${r.end} after ${r.openMs} ms; sent ${r.sent
      .map((b) => b.toString('hex'))
      .join(' ')
      .slice(0, 4000)}\n` +
      `server ${alive ? 'up' : `DOWN: ${rig.child.stderr.slice(-3000)}`}; legitimate probe ${'ms' in p ? 'ok' : `failed: ${p.error}`}\n`,
  );
  await rig.close();
  return alive && 'ms' in p && r.end !== 'hang' ? 0 : 1;
}

/** Re-runs one session case against a fresh session server; 1 when the finding shows again. */
export async function replaySession(f: Pick<Finding, 'seed' | 'index'>): Promise<number> {
  if (f.index < 0) {
    process.stdout.write(
      'this finding is about the whole run (not one case): re-run the campaign with its seed\n',
    );
    return 0;
  }
  const server = sessionServer(20_000 + (process.pid % 1000) * 10);
  const { child, ports } = server;
  try {
    const ready = await child.next();
    if (ready.type !== 'ready') throw new Error('the session server did not start');
    let r: SessionResult;
    try {
      r = await runSessionCase(f.seed, f.index, { port: ready.port, ports });
    } catch (err) {
      return replayFailed(caseFailed('live-session', f.seed, f.index, err));
    }
    const left = await r.leftOpen;
    const alive = child.exited === undefined;
    process.stdout.write(
      `session case ${f.index} (seed ${f.seed}): login ${r.login}; ${r.log.join('; ')}\n` +
        `channels left open after the session: ${left}; server ${alive ? 'up' : `DOWN: ${child.stderr.slice(-3000)}`}\n`,
    );
    return alive && left === 0 ? 0 : 1;
  } finally {
    await server.close();
  }
}
