/**
 * One authenticated client's control session: its control channel, its tunnels (TunnelRegistry), its
 * idle pre-opened data channels and the data channels it has paired. Heartbeats keep it alive; silence
 * for three intervals ends it.
 */
import type { AllowListEntry, PortRange } from '../identity/index.js';
import type { SessionKeys } from '../protocol/handshake.js';
import { MAX_IDLE_DATA_CHANNELS, MAX_PENDING_PAIRINGS } from '../protocol/limits.js';
import { type ClientMessage, PROTOCOL_VERSION } from '../protocol/messages.js';
import type { ServerConnection } from '../transport/handshake.js';
import type { Logger } from '../util/logger.js';
import type { ConnectionPairer, PairingSession } from './connection-pairer.js';
import type { Metrics } from './metrics.js';
import { TunnelRegistry } from './tunnel-registry.js';

/** What every session of a server shares. */
export interface ServerContext {
  log: Logger;
  metrics: Metrics;
  pairer: ConnectionPairer;
  heartbeatMs: number;
  bindHost: string;
  displayHost: string;
  serverRanges: readonly PortRange[];
}

/** A client session. */
export class ControlSession implements PairingSession {
  readonly sessionId: Buffer;
  readonly sessionSecret: Buffer;
  readonly clientKey: Buffer;
  readonly fingerprint: string;
  readonly log: Logger;
  closed = false;
  readonly #conn: ServerConnection;
  readonly #ctx: ServerContext;
  readonly #registry: TunnelRegistry;
  /** Data channels carrying a connection, and idle ones; each with the unsubscribe of its close listener. */
  readonly #paired = new Map<ServerConnection, () => void>();
  readonly #idle = new Map<ServerConnection, () => void>();
  #idleTimer: NodeJS.Timeout | undefined;
  #pendingProofs = 0;
  readonly #onClosed: (s: ControlSession) => void;

  constructor(opts: {
    conn: ServerConnection;
    keys: SessionKeys;
    entry: AllowListEntry;
    ctx: ServerContext;
    onClosed: (s: ControlSession) => void;
  }) {
    this.#conn = opts.conn;
    this.#ctx = opts.ctx;
    this.#onClosed = opts.onClosed;
    this.sessionId = opts.keys.sessionId;
    this.sessionSecret = opts.keys.sessionSecret;
    this.clientKey = opts.entry.publicRaw;
    this.fingerprint = opts.entry.fingerprint;
    this.log = opts.ctx.log.child({ client: opts.entry.fingerprint });
    this.#registry = new TunnelRegistry({
      bindHost: opts.ctx.bindHost,
      displayHost: opts.ctx.displayHost,
      serverRanges: opts.ctx.serverRanges,
      keyRanges: opts.entry.options.permitListen,
      metrics: opts.ctx.metrics,
      log: this.log,
      hooks: {
        status: (msg) => this.#send(msg),
        incoming: (tunnelId, counters, socket) => this.#ctx.pairer.incoming(this, tunnelId, counters, socket),
        tunnelClosed: (tunnelId) => this.#ctx.pairer.dropTunnel(this, tunnelId),
      },
    });
  }

  /** Starts serving the control channel. */
  start(): void {
    this.#conn.onMessage((msg) => this.#handle(msg));
    this.#conn.onClose((err) =>
      this.close(err ? `control channel failed: ${err.message}` : 'client disconnected'),
    );
    this.#conn.onEnd(() => this.close('client disconnected'));
    this.#touch();
  }

  /** Ports this session has open. */
  get ports(): number[] {
    return this.#registry.ports;
  }

  sendIncoming(connId: number, tunnelId: number, peer: string): void {
    this.#send({ type: 'IncomingConn', connId, tunnelId, peer });
  }

  adoptChannel(conn: ServerConnection): void {
    this.#idle.get(conn)?.();
    this.#idle.delete(conn);
    if (!this.#paired.has(conn))
      this.#paired.set(
        conn,
        conn.onClose(() => this.#paired.delete(conn)),
      );
  }

  /** Counts a data channel waiting for its proof; false at the cap (MAX_PENDING_PAIRINGS). */
  reserveProof(): boolean {
    if (this.closed || this.#pendingProofs >= MAX_PENDING_PAIRINGS) return false;
    this.#pendingProofs += 1;
    return true;
  }

  releaseProof(): void {
    this.#pendingProofs -= 1;
  }

  /**
   * Keeps a proven data channel (pre-opened, or done with its last connection) until a connection
   * needs it. False when the session is over or the idle cap is reached: the caller closes it.
   */
  addIdle(conn: ServerConnection): boolean {
    this.#paired.get(conn)?.();
    this.#paired.delete(conn);
    if (this.closed || conn.closed || this.#idle.size >= MAX_IDLE_DATA_CHANNELS) return false;
    this.#idle.set(
      conn,
      conn.onClose(() => this.#idle.delete(conn)),
    );
    return true;
  }

  /**
   * Ends the session: its listeners and waiting connections go at once, so the same key can log in
   * again without "port already in use". Established connections survive unless `revoke` is set.
   */
  close(reason: string, opts: { revoke?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#registry.closeAll();
    this.#ctx.pairer.dropSession(this);
    for (const c of [...this.#idle.keys()]) c.close();
    if (opts.revoke) {
      this.#send({ type: 'AuthFail', reason: 'revoked', version: PROTOCOL_VERSION, message: reason });
      for (const c of [...this.#paired.keys()]) c.close();
    }
    this.#conn.stream.end();
    setTimeout(() => this.#conn.close(), 500).unref();
    this.log.info('client session ended', { reason });
    this.#onClosed(this);
  }

  #send(msg: Parameters<ServerConnection['send']>[0]): void {
    if (!this.#conn.closed) this.#conn.send(msg);
  }

  #touch(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    const limit = this.#ctx.heartbeatMs * 3;
    this.#idleTimer = setTimeout(() => this.close(`no heartbeat for ${limit} ms`), limit);
    this.#idleTimer.unref();
  }

  #handle(msg: ClientMessage): void {
    if (this.closed) return;
    this.#touch();
    switch (msg.type) {
      case 'OpenTunnel':
        this.#registry.open(msg);
        return;
      case 'CloseTunnel':
        this.#registry.close(msg.tunnelId);
        return;
      case 'Heartbeat':
        if (!msg.reply) this.#send({ type: 'Heartbeat', reply: true, seq: msg.seq });
        return;
      case 'Error':
        if (msg.streamId !== 0) this.#ctx.pairer.fail(msg.streamId, `client: ${msg.code} ${msg.message}`);
        else this.log.warn('client reported an error', { code: msg.code, message: msg.message });
        return;
      default:
        this.log.warn('protocol error on the control channel', { got: msg.type });
        this.close(`unexpected ${msg.type} on the control channel`);
    }
  }
}
