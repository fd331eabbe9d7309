/**
 * Data channels of one session: each is its own TCP connection to the server, keyed by a symmetric
 * handshake with fresh nonces from both sides. A small pool is opened ahead of need (and proven with
 * a first keyed frame), so a new external connection waits for no handshake round trip.
 */
import { connect } from 'node:net';
import { decodeServerMessage } from '../protocol/messages.js';
import { FramedConnection } from '../transport/framed-connection.js';
import { type ClientConnection, runDataClientHandshake } from '../transport/handshake.js';
import type { Logger } from '../util/logger.js';

/**
 * Channels a pool keeps when connections end, beyond the ones it opens ahead of need: a burst of
 * connections leaves warm channels for the next burst. Below the server's cap on idle channels.
 */
export const MAX_KEPT_CHANNELS = 32;

/** Opens a TCP connection with TCP_NODELAY and half-close allowed; rejects on error or timeout. */
export function dialTcp(host: string, port: number, timeoutMs: number): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Opens and pools the data channels of one session. */
export class DataChannelFactory {
  /** Idle channels, each with the unsubscribe of its close listener. */
  readonly #idle: Array<{ conn: ClientConnection; unsubscribe: () => void }> = [];
  #opening = 0;
  #closed = false;
  readonly #opts: DataChannelOptions;

  constructor(opts: DataChannelOptions) {
    this.#opts = opts;
  }

  /** Channels waiting in the pool. */
  get idleCount(): number {
    return this.#idle.length;
  }

  /** Opens channels until the pool is full. */
  fill(): void {
    while (!this.#closed && this.#idle.length + this.#opening < this.#opts.poolSize) {
      this.#opening += 1;
      this.#open()
        .then((conn) => {
          // The first keyed frame proves the channel belongs to the session; it then waits idle.
          conn.send({ type: 'Heartbeat', reply: false, seq: 0 });
          if (this.#closed) {
            conn.close();
            return;
          }
          this.#keep(conn);
        })
        .catch((err: Error) => this.#opts.log.debug('pooled data channel failed', { error: err }))
        .finally(() => {
          this.#opening -= 1;
        });
    }
  }

  /** A keyed channel: from the pool when one is ready, else a new one. */
  async take(): Promise<ClientConnection> {
    while (this.#idle.length > 0) {
      const { conn, unsubscribe } = this.#idle.shift()!;
      unsubscribe();
      if (!conn.closed) {
        this.fill();
        return conn;
      }
    }
    const conn = await this.#open();
    this.fill();
    return conn;
  }

  /**
   * Takes back a channel whose connection ended cleanly (FIN both ways), to carry the next one.
   * False when the pool is full or closed: the caller closes the channel.
   */
  release(conn: ClientConnection): boolean {
    if (
      this.#closed ||
      conn.closed ||
      this.#idle.length >= Math.max(this.#opts.poolSize, MAX_KEPT_CHANNELS)
    ) {
      return false;
    }
    this.#keep(conn);
    return true;
  }

  /** Closes the idle channels; channels in use are left alone. */
  close(): void {
    this.#closed = true;
    for (const { conn, unsubscribe } of this.#idle.splice(0)) {
      unsubscribe();
      conn.close();
    }
  }

  #keep(conn: ClientConnection): void {
    const entry = {
      conn,
      unsubscribe: conn.onClose(() => {
        const i = this.#idle.indexOf(entry);
        if (i >= 0) this.#idle.splice(i, 1);
      }),
    };
    this.#idle.push(entry);
  }

  async #open(): Promise<ClientConnection> {
    const { host, port, sessionId, sessionSecret, timeoutMs } = this.#opts;
    const socket = await dialTcp(host, port, timeoutMs);
    const conn: ClientConnection = new FramedConnection(socket, decodeServerMessage);
    socket.on('error', () => {});
    try {
      await runDataClientHandshake(conn, { sessionId, sessionSecret, timeoutMs });
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }
}

/** Options of a DataChannelFactory. */
export interface DataChannelOptions {
  host: string;
  port: number;
  sessionId: Buffer;
  sessionSecret: Buffer;
  poolSize: number;
  timeoutMs: number;
  log: Logger;
}
