/**
 * ControlClient: keeps the control channel up. Connects, runs the handshake (pinning the server key,
 * or trusting it on first use like SSH), restores every tunnel, answers heartbeats and watches for a
 * silent server, and reconnects for ever unless told to exit on failure: quickly while the server
 * cannot be reached at all (so it is usable soon after it comes back), with capped exponential
 * backoff and jitter after a failed login, and at the maximum wait when the key is in use by another
 * live client. A tunnel the server refused for a reason that can heal is retried with backoff too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseCidr, splitHostPort } from '../config/host-port.js';
import { parseRate } from '../config/rate.js';
import {
  fingerprint,
  formatPublicKeyLine,
  type Identity,
  lookupKnownServer,
  parsePublicKeyLine,
  recordKnownServer,
} from '../identity/index.js';
import { AuthRejectedError, isProtocolError, ProtocolError } from '../protocol/errors.js';
import { HANDSHAKE_TIMEOUT_MS } from '../protocol/limits.js';
import {
  type AddressBlock,
  decodeServerMessage,
  type ServerMessage,
  type TunnelReasonName,
  type TunnelStatus,
} from '../protocol/messages.js';
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
import type { StateStore } from './state-store.js';
import type { ManagedTunnel, TunnelManager } from './tunnel-manager.js';

/**
 * While the server cannot be reached at all (refused, unreachable, timed out), the client tries again
 * at least this often, and dials a fresh attempt this often while one is pending.
 */
export const RECONNECT_PROBE_MS = 1_000;
/** First wait before reconnecting after a failed login; doubles (with jitter) up to the maximum. */
export const RECONNECT_MIN_MS = 500;
/** Longest wait for the TCP connection to the server (each data channel's too). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** First wait before retrying a refused tunnel; doubles up to the reconnect maximum. */
export const TUNNEL_RETRY_MIN_MS = 1_000;

/** Tunnel refusals that can heal by themselves or by an admin's change, so they are retried. */
const HEALABLE: ReadonlySet<TunnelReasonName> = new Set<TunnelReasonName>([
  'port_in_use',
  'bind_failed',
  'port_not_allowed',
  'too_many_tunnels',
  'revoked',
]);
/** Failures that say the server was not reached at all (nothing was refused). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
]);

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

  constructor(opts: ControlClientOptions) {
    this.#o = { ...opts };
    opts.tunnels.attach({
      open: (t) => this.#openTunnel(t),
      close: (t) => this.#closeTunnel(t),
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
        this.#closeTunnel(t);
        t.runtime.status = 'disabled';
      } else {
        tunnels.nextId(t);
        this.#openTunnel(t);
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
      let why: string;
      let rejected: { reason: string; message: string } | undefined;
      let unreachable = false;
      try {
        why = await this.#connectOnce();
        attempt = 0;
      } catch (err) {
        why = errorText(err);
        unreachable = UNREACHABLE.has((err as NodeJS.ErrnoException)?.code ?? '');
        if (err instanceof AuthRejectedError) rejected = { reason: err.reason, message: err.message };
        else if (isProtocolError(err) && err.code === 'ERR_SERVER_KEY_MISMATCH') {
          rejected = { reason: 'server_key_mismatch', message: err.message };
        }
      }
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
      let delay = backoff(attempt, this.#o.reconnectMinMs, this.#o.reconnectMaxMs);
      // Another live client holds this key: retrying soon would only refuse us again.
      if (rejected?.reason === 'in_use')
        delay = Math.round(this.#o.reconnectMaxMs * (0.9 + Math.random() * 0.1));
      // Nothing answered at all: try again soon, so the client is back soon after the server or link.
      else if (unreachable) delay = Math.min(delay, RECONNECT_PROBE_MS);
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
    const pin = await this.#pin(hostPort);
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
          if (pin === undefined) {
            firstUse = raw;
            return;
          }
          const got = fingerprint(raw);
          const ok = pin.raw ? pin.raw.equals(raw) : pin.fingerprint === got;
          if (!ok) {
            throw new ProtocolError(
              'ERR_SERVER_KEY_MISMATCH',
              `the server at ${hostPort} presented key ${got}, but ${pin.fingerprint} is pinned (${pin.source}). ` +
                'If the server key really changed, update the pin; otherwise someone may be intercepting the connection.',
            );
          }
        },
      });
    } catch (err) {
      if (err instanceof AuthRejectedError)
        o.observer?.handshake((performance.now() - started) / 1000, false);
      conn.close();
      this.#stop.signal.removeEventListener('abort', onAbort);
      if (err instanceof AuthRejectedError && firstUse) await this.#trust(hostPort, firstUse);
      throw err;
    }
    o.observer?.handshake((performance.now() - started) / 1000, true);
    if (firstUse) await this.#trust(hostPort, firstUse);
    if (this.#stop.signal.aborted) conn.close();
    try {
      return await this.#runSession(conn, hs);
    } finally {
      this.#stop.signal.removeEventListener('abort', onAbort);
    }
  }

  async #pin(hostPort: string): Promise<{ raw?: Buffer; fingerprint: string; source: string } | undefined> {
    const o = this.#o;
    if (o.serverKey) {
      if (o.serverKey.startsWith('SHA256:'))
        return { fingerprint: o.serverKey, source: 'serverKey in the config' };
      const { publicRaw } = parsePublicKeyLine(o.serverKey);
      return { raw: publicRaw, fingerprint: fingerprint(publicRaw), source: 'serverKey in the config' };
    }
    if (!o.knownServersPath) return undefined;
    const line = await lookupKnownServer(o.knownServersPath, hostPort);
    if (!line) return undefined;
    const { publicRaw } = parsePublicKeyLine(line);
    return { raw: publicRaw, fingerprint: fingerprint(publicRaw), source: o.knownServersPath };
  }

  async #trust(hostPort: string, raw: Buffer): Promise<void> {
    const o = this.#o;
    o.log.warn('trusting the server key on first use', { server: hostPort, fingerprint: fingerprint(raw) });
    o.state.event('warn', `trusted server key ${fingerprint(raw)} on first use`);
    if (!o.knownServersPath) return;
    try {
      await recordKnownServer(o.knownServersPath, hostPort, formatPublicKeyLine(raw, ''));
    } catch (err) {
      o.log.error('could not record the server key', { path: o.knownServersPath, error: err as Error });
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
          this.#cancelRetry(t);
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
        if (t.config.enabled) this.#openTunnel(t);
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
        this.#tunnelStatus(msg, log);
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

  #tunnelStatus(msg: TunnelStatus, log: Logger): void {
    const o = this.#o;
    const t = o.tunnels.byId(msg.tunnelId);
    if (!t) return;
    const name = t.config.name;
    const r = t.runtime;
    if (msg.state === 'active') {
      const address = msg.address.startsWith(':') ? `${o.host}${msg.address}` : msg.address;
      r.status = 'active';
      r.publicAddress = address;
      r.effective = { maxConnections: msg.maxConnections, rateLimit: msg.rateLimit };
      delete r.error;
      delete r.errorReason;
      delete r.nextRetryAt;
      t.retry = { attempt: 0 };
      log.info('tunnel active', {
        tunnel: name,
        public: address,
        target: `${t.config.localHost}:${t.config.localPort}`,
      });
      o.state.event('info', `tunnel open: ${address} -> ${t.config.localHost}:${t.config.localPort}`, name);
    } else if (msg.state === 'refused' || (msg.state === 'closed' && msg.reason === 'revoked')) {
      const text = escapeControls(msg.message) || msg.reason;
      r.status = 'error';
      r.error = text;
      r.errorReason = msg.reason;
      delete r.effective;
      const verb = msg.state === 'refused' ? 'refused' : 'closed';
      if (HEALABLE.has(msg.reason)) this.#scheduleRetry(t);
      else delete r.nextRetryAt;
      log.error(`tunnel ${verb} by the server`, {
        tunnel: name,
        reason: msg.reason,
        message: text,
        retryInMs: r.nextRetryAt !== undefined ? r.nextRetryAt - Date.now() : undefined,
      });
      o.state.event('error', `tunnel ${verb}: ${text}`, name);
    } else {
      return;
    }
    o.state.changed();
  }

  #scheduleRetry(t: ManagedTunnel): void {
    this.#cancelRetry(t);
    t.retry.attempt += 1;
    const delay = backoff(
      t.retry.attempt,
      TUNNEL_RETRY_MIN_MS,
      Math.max(TUNNEL_RETRY_MIN_MS, this.#o.reconnectMaxMs),
    );
    t.runtime.nextRetryAt = Date.now() + delay;
    t.retry.timer = setTimeout(() => {
      t.retry.timer = undefined;
      if (!t.config.enabled || t.runtime.status !== 'error' || !this.#live || this.#o.state.paused) return;
      this.#o.tunnels.nextId(t);
      this.#openTunnel(t);
      this.#o.state.changed();
    }, delay);
    t.retry.timer.unref();
  }

  #cancelRetry(t: ManagedTunnel): void {
    if (t.retry.timer) clearTimeout(t.retry.timer);
    t.retry.timer = undefined;
    delete t.runtime.nextRetryAt;
  }

  #openTunnel(t: ManagedTunnel): void {
    const live = this.#live;
    this.#cancelRetry(t);
    if (!t.config.enabled) {
      t.runtime.status = 'disabled';
      return;
    }
    if (this.#o.state.paused) {
      t.runtime.status = 'disabled';
      return;
    }
    t.runtime.status = 'opening';
    if (!live || live.conn.closed) return;
    const c = t.config;
    live.conn.send({
      type: 'OpenTunnel',
      tunnelId: t.tunnelId,
      remotePort: c.remotePort,
      name: c.name,
      compress: c.compress,
      maxConnections: c.maxConnections ?? 0,
      rateLimit: c.rateLimit ? Math.min(0xffff_ffff, parseRate(c.rateLimit)) : 0,
      permitFrom: (c.permitFrom ?? []).flatMap((text): AddressBlock[] => {
        // The schema validated every entry; one that does not parse is left out (it would allow nothing).
        const b = parseCidr(text.trim());
        return typeof b === 'string'
          ? []
          : [{ family: b.family, prefix: b.prefix, address: Buffer.from(b.bytes) }];
      }),
    });
  }

  #closeTunnel(t: ManagedTunnel): void {
    this.#cancelRetry(t);
    const live = this.#live;
    if (!live || live.conn.closed) return;
    live.conn.send({ type: 'CloseTunnel', tunnelId: t.tunnelId });
  }
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped. */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return 'connection refused (is the server running?)';
  if (e?.code === 'ENOTFOUND') return `host not found (${e.message})`;
  return e?.message ?? String(err);
}
