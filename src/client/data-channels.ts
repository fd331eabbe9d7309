/**
 * The data channels of one session, on the client: each is its own TCP connection to the server,
 * keyed by a symmetric handshake with fresh nonces from both sides and proven by a first Heartbeat.
 * The pool keeps `poolSize` proven channels idle at the server and opens more when the server asks
 * (ChannelsWanted). The server assigns a visitor to an idle channel by sending IncomingConn on it; the
 * client never picks a channel itself, so it cannot hand out one the server has ended. A channel that
 * the server ends, or that fails, leaves the pool at once; one whose connection ended cleanly comes
 * back to it.
 */
import { decodeServerMessage, type IncomingConn } from '../protocol/messages.js';
import { FramedConnection } from '../transport/framed-connection.js';
import { type ClientConnection, runDataClientHandshake } from '../transport/handshake.js';
import { dialTcp } from '../transport/sockets.js';
import type { Logger } from '../util/logger.js';
import type { ClientObserver } from './metrics.js';

/** Channels being opened at once, at most: a burst of ChannelsWanted cannot open without bound. */
export const MAX_OPENING_CHANNELS = 64;
/** A channel that closes this soon after it was opened is replaced only after this delay. */
const REFILL_BACKOFF_MS = 1_000;

/** Options of a DataChannelPool. */
export interface DataChannelOptions {
  host: string;
  port: number;
  sessionId: Buffer;
  sessionSecret: Buffer;
  /** Proven idle channels to keep at the server. */
  poolSize: number;
  timeoutMs: number;
  /** How often each idle channel sends a keepalive Heartbeat (the session's heartbeat interval). */
  keepaliveMs: number;
  log: Logger;
  /** The server assigned a visitor to `conn`; the pool has let go of it. */
  onIncoming(conn: ClientConnection, msg: IncomingConn): void;
  /** Told how long each channel took to open (metrics). */
  observer?: Pick<ClientObserver, 'channelSetup'>;
}

/** Opens, keeps and hands over the data channels of one session. */
export class DataChannelPool {
  /** Idle channels, each with the unsubscribe of its close listener. */
  readonly #idle = new Map<ClientConnection, () => void>();
  /** Channels carrying a connection (the relay owns them; the pool tracks them for close()). */
  readonly #busy = new Set<ClientConnection>();
  #opening = 0;
  /** Channels asked for beyond the pool size (ChannelsWanted) and not yet opened. */
  #wanted = 0;
  #closed = false;
  #drained: () => void = () => {};
  /** Resolves once the pool is closed and no channel of it carries a connection any more. */
  readonly drained = new Promise<void>((r) => {
    this.#drained = r;
  });
  #seq = 1;
  #refill: NodeJS.Timeout | undefined;
  readonly #openedAt = new WeakMap<ClientConnection, number>();
  readonly #keepalive: NodeJS.Timeout;
  readonly #opts: DataChannelOptions;

  constructor(opts: DataChannelOptions) {
    this.#opts = opts;
    this.#keepalive = setInterval(() => this.#beat(), Math.max(10, opts.keepaliveMs));
    this.#keepalive.unref();
  }

  /** Counts for tests and the state view. */
  stats(): { idle: number; busy: number; opening: number } {
    return { idle: this.#idle.size, busy: this.#busy.size, opening: this.#opening };
  }

  /** Opens channels until `poolSize` are idle or being opened (plus any the server asked for). */
  fill(): void {
    while (
      !this.#closed &&
      this.#opening < MAX_OPENING_CHANNELS &&
      (this.#idle.size + this.#opening < this.#opts.poolSize || this.#wanted > 0)
    ) {
      if (this.#idle.size + this.#opening >= this.#opts.poolSize) this.#wanted -= 1;
      this.#opening += 1;
      this.#open()
        .then((conn) => {
          // The first keyed frame proves the channel belongs to the session; it then waits idle.
          conn.send({ type: 'Heartbeat', reply: false, seq: 0 });
          this.#keep(conn);
        })
        .catch((err: Error) => this.#opts.log.debug('data channel could not be opened', { error: err }))
        .finally(() => {
          this.#opening -= 1;
        });
    }
  }

  /** Changes how many idle channels the pool keeps (it opens more at once; it never closes any). */
  setPoolSize(n: number): void {
    this.#opts.poolSize = n;
    this.fill();
  }

  /** The server has visitors waiting and no idle channel: open `count` more. */
  want(count: number): void {
    this.#wanted = Math.min(this.#wanted + count, MAX_OPENING_CHANNELS);
    this.fill();
  }

  /**
   * Takes back a channel whose connection ended cleanly (FIN both ways): it is idle again on both
   * sides. False when the pool is closed: the caller ends the channel.
   */
  release(conn: ClientConnection): boolean {
    this.#busy.delete(conn);
    if (this.#closed || conn.closed) {
      this.#checkDrained();
      return false;
    }
    this.#keep(conn);
    return true;
  }

  /** A busy channel ended for good (not reusable). */
  forget(conn: ClientConnection): void {
    this.#busy.delete(conn);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#closed && this.#busy.size === 0) this.#drained();
  }

  /**
   * Closes the idle channels; with `dropConnections`, the busy ones too (their connections are
   * reset). Resolves when every closed channel's socket is closed.
   */
  async close(opts: { dropConnections?: boolean } = {}): Promise<void> {
    this.#closed = true;
    clearInterval(this.#keepalive);
    if (this.#refill) clearTimeout(this.#refill);
    const closing: Promise<void>[] = [];
    const shut = (conn: ClientConnection) => {
      closing.push(new Promise((r) => conn.onClose(() => r())));
      conn.close();
    };
    for (const [conn, unsubscribe] of [...this.#idle]) {
      unsubscribe();
      shut(conn);
    }
    this.#idle.clear();
    if (opts.dropConnections) {
      for (const conn of [...this.#busy]) shut(conn);
      this.#busy.clear();
    }
    this.#checkDrained();
    await Promise.all(closing);
  }

  #keep(conn: ClientConnection): void {
    if (this.#closed) {
      conn.close();
      return;
    }
    const unsubscribe = conn.onClose(() => {
      this.#idle.delete(conn);
      // A channel the server closes right away (its budget, a session that just ended) is not
      // replaced in a tight loop.
      const young = Date.now() - (this.#openedAt.get(conn) ?? 0) < REFILL_BACKOFF_MS;
      if (!young) this.fill();
      else
        this.#refill ??= setTimeout(() => {
          this.#refill = undefined;
          this.fill();
        }, REFILL_BACKOFF_MS).unref();
    });
    this.#idle.set(conn, unsubscribe);
    conn.onMessage((msg) => {
      if (msg.type === 'IncomingConn') {
        this.#idle.get(conn)?.();
        this.#idle.delete(conn);
        this.#busy.add(conn);
        conn.detach();
        this.fill();
        this.#opts.onIncoming(conn, msg);
        return;
      }
      if (msg.type === 'Heartbeat') return;
      this.#opts.log.debug('idle data channel closed: unexpected message', { got: msg.type });
      conn.close();
    });
    // The server ended this idle channel (its cap, or the session is over): never hand it out again.
    conn.onEnd(() => conn.close());
  }

  #beat(): void {
    if (this.#closed || this.#idle.size === 0) return;
    const seq = this.#seq++ >>> 0;
    for (const conn of this.#idle.keys()) conn.send({ type: 'Heartbeat', reply: false, seq });
  }

  async #open(): Promise<ClientConnection> {
    const { host, port, sessionId, sessionSecret, timeoutMs } = this.#opts;
    const started = performance.now();
    const socket = await dialTcp(host, port, timeoutMs);
    const conn: ClientConnection = new FramedConnection(socket, decodeServerMessage);
    this.#openedAt.set(conn, Date.now());
    socket.on('error', () => {});
    try {
      await runDataClientHandshake(conn, { sessionId, sessionSecret, timeoutMs });
    } catch (err) {
      conn.close();
      throw err;
    }
    this.#opts.observer?.channelSetup((performance.now() - started) / 1000);
    return conn;
  }
}
