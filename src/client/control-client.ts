/**
 * ControlClient: keeps the control channel up. Connects, runs the handshake (pinning the server key,
 * or trusting it on first use like SSH), restores every tunnel, answers heartbeats and watches for a
 * silent server, and reconnects with capped exponential backoff and jitter, for ever unless told to
 * exit on failure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
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
import { decodeServerMessage, type ServerMessage } from '../protocol/messages.js';
import { FramedConnection } from '../transport/framed-connection.js';
import {
  type ClientConnection,
  type ClientHandshakeResult,
  runClientHandshake,
} from '../transport/handshake.js';
import type { Logger } from '../util/logger.js';
import { DataChannelFactory, dialTcp } from './data-channels.js';
import { LocalProxy } from './local-proxy.js';
import type { StateStore } from './state-store.js';
import type { ManagedTunnel, TunnelManager } from './tunnel-manager.js';

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
  log: Logger;
}

/** Thrown (through `closed`) when exitOnFailure is set and the connection failed. */
export class ClientFailedError extends Error {
  override readonly name = 'ClientFailedError';
}

/** The reconnect loop; run() resolves when stopped, rejects with ClientFailedError on exitOnFailure. */
export class ControlClient {
  readonly #o: ControlClientOptions;
  readonly #stop = new AbortController();
  #live: { conn: ClientConnection } | undefined;

  constructor(opts: ControlClientOptions) {
    this.#o = opts;
    opts.tunnels.attach({
      open: (t) => this.#openTunnel(t),
      close: (t) => this.#closeTunnel(t),
      changed: () => {
        opts.state.changed();
        opts.onTunnelsChanged?.();
      },
    });
  }

  /** Stops the loop and the current session; established connections are closed by their peers. */
  stop(): void {
    this.#stop.abort();
  }

  async run(): Promise<void> {
    const { state, log } = this.#o;
    const where = `${this.#o.host}:${this.#o.port}`;
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      state.setConnection({ kind: 'connecting', attempt });
      let why: string;
      let rejected: { reason: string; message: string } | undefined;
      try {
        const ended = await this.#connectOnce();
        attempt = 0;
        why = ended;
      } catch (err) {
        why = errorText(err);
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
      const delay = backoff(attempt, this.#o.reconnectMinMs, this.#o.reconnectMaxMs);
      const nextTryAt = Date.now() + delay;
      if (rejected) {
        log.error('server refused this client', { server: where, reason: rejected.reason, retryInMs: delay });
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
      try {
        await sleep(delay, undefined, { signal: this.#stop.signal });
      } catch {
        break;
      }
    }
    state.setConnection({ kind: 'stopped' });
  }

  /** One connection: resolves with why the session ended; throws if it never got established. */
  async #connectOnce(): Promise<string> {
    const o = this.#o;
    const hostPort = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
    const pin = await this.#pin(hostPort);
    let firstUse: Buffer | undefined;
    const socket = await dialTcp(o.host, o.port, o.connectTimeoutMs);
    const conn: ClientConnection = new FramedConnection(socket, decodeServerMessage);
    socket.on('error', () => {});
    const onAbort = () => conn.close();
    // stop() may have come while we were dialing; a listener added now would never fire.
    if (this.#stop.signal.aborted) onAbort();
    this.#stop.signal.addEventListener('abort', onAbort, { once: true });
    let hs: ClientHandshakeResult;
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
      conn.close();
      this.#stop.signal.removeEventListener('abort', onAbort);
      if (err instanceof AuthRejectedError && firstUse) await this.#trust(hostPort, firstUse);
      throw err;
    }
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
    const channels = new DataChannelFactory({
      host: o.host,
      port: o.port,
      sessionId: hs.keys.sessionId,
      sessionSecret: hs.keys.sessionSecret,
      poolSize: o.dataChannelPool,
      timeoutMs: o.connectTimeoutMs,
      log,
    });
    const proxy = new LocalProxy({
      tunnels: o.tunnels,
      channels,
      state: o.state,
      log,
      reportFailure: (connId, message) => {
        if (!conn.closed) conn.send({ type: 'Error', streamId: connId, code: 'target_unreachable', message });
      },
    });
    const interval = Math.max(10, Math.min(o.heartbeatMs, hs.heartbeatMs || o.heartbeatMs));
    log.info('connected', { server: `${o.host}:${o.port}`, fingerprint: serverFp });
    o.state.event('info', `connected to ${o.host}:${o.port} (${serverFp})`);
    o.state.setConnection({ kind: 'connected', serverFingerprint: serverFp, since: Date.now() });

    return new Promise<string>((resolve) => {
      let ended = false;
      let seq = 0;
      let watchdog: NodeJS.Timeout | undefined;
      const end = (why: string) => {
        if (ended) return;
        ended = true;
        clearInterval(beat);
        if (watchdog) clearTimeout(watchdog);
        this.#live = undefined;
        channels.close();
        conn.close();
        for (const t of o.tunnels.all()) {
          if (t.config.enabled) t.runtime.status = 'opening';
        }
        if (this.#stop.signal.aborted) {
          log.debug('disconnected: stopping', { reason: why });
        } else {
          log.warn('disconnected', { reason: why });
          o.state.event('warn', `disconnected: ${why}`);
        }
        resolve(why);
      };
      const beat = setInterval(() => {
        conn.send({ type: 'Heartbeat', reply: false, seq: seq++ >>> 0 });
        watchdog ??= setTimeout(
          () => end(`no answer to a heartbeat within ${o.heartbeatTimeoutMs} ms`),
          o.heartbeatTimeoutMs,
        );
      }, interval);
      conn.onMessage((msg: ServerMessage) => {
        if (watchdog) {
          clearTimeout(watchdog);
          watchdog = undefined;
        }
        this.#handle(msg, proxy, log, end);
      });
      conn.onEnd(() => end('the server closed the connection'));
      conn.onClose((err) => end(err ? errorText(err) : 'connection closed'));
      this.#live = { conn };
      o.tunnels.renumber();
      for (const t of o.tunnels.all()) {
        t.runtime.status = t.config.enabled ? 'opening' : 'disabled';
        if (t.config.enabled) this.#openTunnel(t);
      }
      o.state.changed();
      channels.fill();
    });
  }

  #handle(msg: ServerMessage, proxy: LocalProxy, log: Logger, end: (why: string) => void): void {
    const o = this.#o;
    switch (msg.type) {
      case 'Heartbeat':
        if (!msg.reply) this.#live?.conn.send({ type: 'Heartbeat', reply: true, seq: msg.seq });
        return;
      case 'IncomingConn':
        proxy.handle(msg);
        return;
      case 'TunnelStatus': {
        const t = o.tunnels.byId(msg.tunnelId);
        if (!t) return;
        const name = t.config.name;
        if (msg.state === 'active') {
          const address = msg.address.startsWith(':') ? `${o.host}${msg.address}` : msg.address;
          t.runtime.status = 'active';
          t.runtime.publicAddress = address;
          delete t.runtime.error;
          log.info('tunnel active', {
            tunnel: name,
            public: address,
            target: `${t.config.localHost}:${t.config.localPort}`,
          });
          o.state.event(
            'info',
            `tunnel open: ${address} -> ${t.config.localHost}:${t.config.localPort}`,
            name,
          );
        } else if (msg.state === 'refused') {
          t.runtime.status = 'error';
          t.runtime.error = msg.message || msg.reason;
          log.error('tunnel refused by the server', {
            tunnel: name,
            reason: msg.reason,
            message: msg.message,
          });
          o.state.event('error', `tunnel refused: ${msg.message || msg.reason}`, name);
        }
        o.state.changed();
        return;
      }
      case 'AuthFail':
        // The server withdrew this client's access (its key left the allow-list).
        log.error('server ended the session', { reason: msg.reason, message: msg.message });
        o.state.event('error', `server ended the session: ${msg.reason} (${msg.message})`);
        end(`server ended the session: ${msg.reason}`);
        return;
      case 'Error':
        log.error('server reported an error', { code: msg.code, message: msg.message });
        o.state.event('error', `server: ${msg.message}`);
        return;
      default:
        end(`unexpected ${msg.type} from the server`);
    }
  }

  #openTunnel(t: ManagedTunnel): void {
    const live = this.#live;
    t.runtime.status = t.config.enabled ? 'opening' : 'disabled';
    if (!live || live.conn.closed) return;
    live.conn.send({
      type: 'OpenTunnel',
      tunnelId: t.tunnelId,
      remotePort: t.config.remotePort,
      name: t.config.name,
    });
  }

  #closeTunnel(t: ManagedTunnel): void {
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
