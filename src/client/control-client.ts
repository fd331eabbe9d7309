/**
 * ControlClient: keeps the control channel up. Connects, runs the handshake (the server key checked
 * by server-pin.ts), restores every tunnel (tunnel-requests.ts, which also retries refusals that can
 * heal), answers heartbeats and watches for a silent server, and reconnects for ever unless told to
 * exit on failure, waiting as reconnect.ts says: briefly while the server cannot be reached at all,
 * with capped exponential backoff and jitter after a failed login, and at the maximum wait when the
 * key is in use by another live client.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { splitHostPort } from '../config/host-port.js';
import { fingerprint, type Identity } from '../identity/index.js';
import { AuthRejectedError } from '../protocol/errors.js';
import { HANDSHAKE_TIMEOUT_MS } from '../protocol/limits.js';
import { decodeServerMessage, type ServerMessage } from '../protocol/messages.js';
import { FramedConnection } from '../transport/framed-connection.js';
import {
  type ClientConnection,
  type ClientHandshakeResult,
  runClientHandshake,
} from '../transport/handshake.js';
import { dialStaggered } from '../transport/sockets.js';
import { escapeControls } from '../util/escape.js';
import type { Logger } from '../util/logger.js';
import type { ClientSettings } from './api.js';
import { DataChannelPool } from './data-channels.js';
import { LocalProxy } from './local-proxy.js';
import type { ClientObserver } from './metrics.js';
import {
  type AttemptFailure,
  classifyFailure,
  errorText,
  RECONNECT_PROBE_MS,
  reconnectDelay,
} from './reconnect.js';
import { checkPin, serverPin, trustOnFirstUse } from './server-pin.js';
import type { StateStore } from './state-store.js';
import type { TunnelManager } from './tunnel-manager.js';
import { TunnelRequests } from './tunnel-requests.js';

/** Settings of the control loop. */
export interface ControlClientOptions {
  host: string;
  port: number;
  identity: Identity;
  /** Pinned server key: a public key line or a SHA256: fingerprint. */
  serverKey?: string;
  /** Trust-on-first-use file, used when serverKey is not set. */
  knownServersPath?: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  exitOnFailure: boolean;
  dataChannelPool: number;
  connectTimeoutMs: number;
  tunnels: TunnelManager;
  state: StateStore;
  /** Called after a run-time tunnel change (add, edit, remove, enable, disable). */
  onTunnelsChanged?: () => void;
  /** Timings for the metrics (mtt client --metrics). */
  observer?: ClientObserver;
  log: Logger;
}

/** Thrown (through `closed`) when exitOnFailure is set and the connection failed. */
export class ClientFailedError extends Error {
  override readonly name = 'ClientFailedError';
}

interface LiveSession {
  conn: ClientConnection;
  pool: DataChannelPool;
  end(why: string): void;
  restartHeartbeat(): void;
}

/** The reconnect loop; run() resolves when stopped, rejects with ClientFailedError on exitOnFailure. */
export class ControlClient {
  readonly #o: ControlClientOptions;
  readonly #stop = new AbortController();
  #wake: AbortController | undefined;
  #live: LiveSession | undefined;
  /** Pools of this and earlier sessions whose channels still carry connections. */
  readonly #pools = new Set<DataChannelPool>();
  readonly #requests: TunnelRequests;

  constructor(opts: ControlClientOptions) {
    this.#o = { ...opts };
    this.#requests = new TunnelRequests(this.#o, () => this.#live?.conn);
    opts.tunnels.attach({
      open: (t) => this.#requests.open(t),
      close: (t) => this.#requests.close(t),
      changed: () => {
        opts.state.changed();
        opts.onTunnelsChanged?.();
      },
    });
  }

  /**
   * Stops the loop and the current session. Established connections go on until their peers end
   * them, unless `dropConnections` is set: then every one is reset and every data channel closed, and
   * the promise resolves when their sockets are closed.
   */
  async stop(opts: { dropConnections?: boolean } = {}): Promise<void> {
    this.#stop.abort();
    this.#live?.end('stopping');
    if (opts.dropConnections) {
      await Promise.all([...this.#pools].map((p) => p.close({ dropConnections: true })));
    }
  }

  /** Skips the current wait before the next connection attempt. */
  reconnectNow(): void {
    this.#wake?.abort();
  }

  /** Closes (true) or reopens (false) every enabled tunnel on the server; the config is untouched. */
  pause(paused: boolean): void {
    const { state, tunnels } = this.#o;
    if (state.paused === paused) return;
    state.setPaused(paused);
    for (const t of tunnels.all()) {
      if (!t.config.enabled) continue;
      if (paused) {
        this.#requests.close(t);
        t.runtime.status = 'disabled';
      } else {
        tunnels.nextId(t);
        this.#requests.open(t);
      }
    }
    state.changed();
  }

  /** Applies new settings; a new server or server key reconnects at once. */
  updateSettings(s: ClientSettings): void {
    const o = this.#o;
    let reconnect = false;
    if (s.server !== undefined) {
      const { host, port } = splitHostPort(s.server);
      if (host !== o.host || port !== o.port) {
        o.host = host;
        o.port = port;
        o.state.setServerAddress(`${host}:${port}`);
        reconnect = true;
      }
    }
    // serverKey present but undefined unpins it (trust on first use from then on).
    if ('serverKey' in s && (s.serverKey || undefined) !== o.serverKey) {
      o.serverKey = s.serverKey || undefined;
      reconnect = true;
    }
    if (s.heartbeatTimeoutSeconds !== undefined) o.heartbeatTimeoutMs = s.heartbeatTimeoutSeconds * 1000;
    if (s.reconnectMaxSeconds !== undefined) o.reconnectMaxMs = s.reconnectMaxSeconds * 1000;
    if (s.dataChannelPool !== undefined) {
      o.dataChannelPool = s.dataChannelPool;
      this.#live?.pool.setPoolSize(s.dataChannelPool);
    }
    if (s.heartbeatSeconds !== undefined) {
      o.heartbeatMs = s.heartbeatSeconds * 1000;
      this.#live?.restartHeartbeat();
    }
    if (reconnect) {
      this.#live?.end('the server settings changed');
      this.reconnectNow();
    }
  }

  async run(): Promise<void> {
    const { state, log } = this.#o;
    let attempt = 0;
    let first = true;
    while (!this.#stop.signal.aborted) {
      if (!first) this.#o.observer?.reconnect();
      first = false;
      const where = `${this.#o.host}:${this.#o.port}`;
      state.setConnection({ kind: 'connecting', attempt });
      let failure: AttemptFailure;
      try {
        // A session that ended after it was established: start the backoff over.
        failure = { why: await this.#connectOnce(), unreachable: false };
        attempt = 0;
      } catch (err) {
        failure = classifyFailure(err);
      }
      const { why, rejected } = failure;
      if (this.#stop.signal.aborted) break;
      if (this.#o.exitOnFailure) {
        state.setConnection(
          rejected
            ? { kind: 'rejected', reason: rejected.reason, message: rejected.message }
            : { kind: 'stopped' },
        );
        throw new ClientFailedError(`connection to ${where} failed: ${why}`);
      }
      attempt += 1;
      const delay = reconnectDelay(attempt, failure, this.#o.reconnectMinMs, this.#o.reconnectMaxMs);
      const nextTryAt = Date.now() + delay;
      if (rejected) {
        log.error('server refused this client', {
          server: where,
          reason: rejected.reason,
          message: rejected.message,
          retryInMs: delay,
        });
        state.event('error', rejected.message);
        state.setConnection({
          kind: 'rejected',
          reason: rejected.reason,
          message: rejected.message,
          nextTryAt,
        });
      } else {
        log.warn('not connected; will retry', { server: where, error: why, retryInMs: delay });
        state.event('warn', `not connected: ${why}`);
        state.setConnection({ kind: 'reconnecting', attempt, nextTryAt, lastError: why });
      }
      this.#wake = new AbortController();
      try {
        await sleep(delay, undefined, { signal: AbortSignal.any([this.#stop.signal, this.#wake.signal]) });
      } catch {
        if (this.#stop.signal.aborted) break;
      }
      this.#wake = undefined;
    }
    state.setConnection({ kind: 'stopped' });
  }

  /** One connection: resolves with why the session ended; throws if it never got established. */
  async #connectOnce(): Promise<string> {
    const o = this.#o;
    const hostPort = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
    const pin = await serverPin(o.serverKey, o.knownServersPath, hostPort);
    let firstUse: Buffer | undefined;
    const socket = await dialStaggered(o.host, o.port, o.connectTimeoutMs, RECONNECT_PROBE_MS);
    const conn: ClientConnection = new FramedConnection(socket, decodeServerMessage);
    socket.on('error', () => {});
    const onAbort = () => conn.close();
    // stop() may have come while we were dialing; a listener added now would never fire.
    if (this.#stop.signal.aborted) onAbort();
    this.#stop.signal.addEventListener('abort', onAbort, { once: true });
    let hs: ClientHandshakeResult;
    const started = performance.now();
    try {
      hs = await runClientHandshake(conn, {
        identity: o.identity,
        timeoutMs: HANDSHAKE_TIMEOUT_MS,
        checkServerKey: (raw) => {
          if (pin) checkPin(pin, raw, hostPort);
          else firstUse = raw;
        },
      });
    } catch (err) {
      if (err instanceof AuthRejectedError)
        o.observer?.handshake((performance.now() - started) / 1000, false);
      conn.close();
      this.#stop.signal.removeEventListener('abort', onAbort);
      if (err instanceof AuthRejectedError && firstUse) await trustOnFirstUse(o, hostPort, firstUse);
      throw err;
    }
    o.observer?.handshake((performance.now() - started) / 1000, true);
    if (firstUse) await trustOnFirstUse(o, hostPort, firstUse);
    if (this.#stop.signal.aborted) conn.close();
    try {
      return await this.#runSession(conn, hs);
    } finally {
      this.#stop.signal.removeEventListener('abort', onAbort);
    }
  }

  #runSession(conn: ClientConnection, hs: ClientHandshakeResult): Promise<string> {
    const o = this.#o;
    const serverFp = fingerprint(hs.serverKey);
    const log = o.log.child({ server: serverFp });
    const { authOk } = hs;
    const interval = () => Math.max(10, Math.min(o.heartbeatMs, authOk.heartbeatMs || o.heartbeatMs));
    let proxy: LocalProxy | undefined;
    const pool = new DataChannelPool({
      host: o.host,
      port: o.port,
      sessionId: hs.keys.sessionId,
      sessionSecret: hs.keys.sessionSecret,
      poolSize: o.dataChannelPool,
      timeoutMs: o.connectTimeoutMs,
      keepaliveMs: interval(),
      log,
      onIncoming: (c, msg) => proxy!.handle(c, msg),
      ...(o.observer ? { observer: o.observer } : {}),
    });
    proxy = new LocalProxy({
      tunnels: o.tunnels,
      state: o.state,
      log,
      release: (c) => pool.release(c),
      forget: (c) => pool.forget(c),
      ...(o.observer ? { observer: o.observer } : {}),
    });
    this.#pools.add(pool);
    void pool.drained.then(() => this.#pools.delete(pool));
    log.info('connected', { server: `${o.host}:${o.port}`, fingerprint: serverFp });
    o.state.event('info', `connected to ${o.host}:${o.port} (${serverFp})`);
    o.state.setGrant({
      allowedPorts: authOk.allowedPorts.map((r) => ({ low: r.low, high: r.high })),
      limits: { maxConnections: authOk.maxConnections, rateLimit: authOk.rateLimit },
    });
    o.state.setConnection({ kind: 'connected', serverFingerprint: serverFp, since: Date.now() });

    return new Promise<string>((resolve) => {
      let ended = false;
      let seq = 0;
      let watchdog: NodeJS.Timeout | undefined;
      let beat: NodeJS.Timeout | undefined;
      const end = (why: string) => {
        if (ended) return;
        ended = true;
        if (beat) clearInterval(beat);
        if (watchdog) clearTimeout(watchdog);
        this.#live = undefined;
        void pool.close();
        conn.close();
        for (const t of o.tunnels.all()) {
          this.#requests.cancelRetry(t);
          if (t.config.enabled && !o.state.paused) t.runtime.status = 'opening';
        }
        if (this.#stop.signal.aborted) {
          log.debug('disconnected: stopping', { reason: why });
        } else {
          log.warn('disconnected', { reason: why });
          o.state.event('warn', `disconnected: ${why}`);
        }
        o.state.changed();
        resolve(why);
      };
      const startBeat = () => {
        if (beat) clearInterval(beat);
        beat = setInterval(() => {
          conn.send({ type: 'Heartbeat', reply: false, seq: seq++ >>> 0 });
          watchdog ??= setTimeout(
            () => end(`no answer to a heartbeat within ${o.heartbeatTimeoutMs} ms`),
            o.heartbeatTimeoutMs,
          );
        }, interval());
      };
      startBeat();
      conn.onMessage((msg: ServerMessage) => {
        if (watchdog) {
          clearTimeout(watchdog);
          watchdog = undefined;
        }
        this.#handle(msg, conn, pool, log, end);
      });
      conn.onEnd(() => end('the server closed the connection'));
      conn.onClose((err) => end(err ? errorText(err) : 'connection closed'));
      this.#live = { conn, pool, end, restartHeartbeat: startBeat };
      o.tunnels.renumber();
      for (const t of o.tunnels.all()) {
        t.retry = { attempt: 0 };
        t.runtime.status = t.config.enabled && !o.state.paused ? 'opening' : 'disabled';
        if (t.config.enabled) this.#requests.open(t);
      }
      o.state.changed();
      pool.fill();
    });
  }

  #handle(
    msg: ServerMessage,
    conn: ClientConnection,
    pool: DataChannelPool,
    log: Logger,
    end: (why: string) => void,
  ): void {
    const o = this.#o;
    switch (msg.type) {
      case 'Heartbeat':
        if (!msg.reply) conn.send({ type: 'Heartbeat', reply: true, seq: msg.seq });
        return;
      case 'ChannelsWanted':
        pool.want(msg.count);
        return;
      case 'TunnelStatus':
        this.#requests.status(msg, log);
        return;
      case 'AuthFail': {
        // Keyed, so from the server: it withdrew this client's access (its key left the allow-list).
        const text = escapeControls(msg.message);
        log.error('server ended the session', { reason: msg.reason, message: text });
        o.state.event('error', `server ended the session: ${msg.reason}${text ? ` (${text})` : ''}`);
        end(`server ended the session: ${msg.reason}`);
        return;
      }
      case 'Error':
        log.error('server reported an error', { code: msg.code, message: escapeControls(msg.message) });
        o.state.event('error', `server: ${escapeControls(msg.message)}`);
        return;
      case 'IncomingConn':
        log.warn('IncomingConn on the control channel ignored (it belongs on a data channel)');
        return;
      default:
        end(`unexpected ${msg.type} from the server`);
    }
  }
}
