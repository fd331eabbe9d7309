/**
 * The acceptor: every new connection on the control port, until its handshake is done. It bounds
 * what strangers can hold: unfinished handshakes per source address (an IPv4 address, an IPv6 /64)
 * and in total, and one deadline per connection — a short one for the first whole frame, then the
 * rest of the whole-handshake budget. A stream that ends inside a frame closes at once (the
 * FramedConnection sees it). What the first frame is (ClientHello, DataHello) is the dispatcher's
 * business.
 */
import type { Socket } from 'node:net';
import { isProtocolError, ProtocolError } from '../protocol/errors.js';
import {
  FIRST_FRAME_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_MS,
  MAX_UNAUTHENTICATED_CONNECTIONS,
  MAX_UNAUTHENTICATED_PER_SOURCE,
} from '../protocol/limits.js';
import { type ClientMessage, decodeClientMessage } from '../protocol/messages.js';
import { sourceKey } from '../transport/addresses.js';
import { FramedConnection } from '../transport/framed-connection.js';
import { failAndClose, type ServerConnection } from '../transport/handshake.js';
import type { Logger } from '../util/logger.js';
import type { Metrics } from './metrics.js';

/** A connection in its handshake, as the dispatcher gets it. */
export interface Handshaking {
  conn: ServerConnection;
  /** "host:port" of the peer. */
  peer: string;
  /** The peer's address alone. */
  address: string | undefined;
  /** Milliseconds left of the whole-handshake deadline. */
  timeLeft(): number;
  /** The handshake is over (authenticated, or handed to a session's own bound): free its slot. */
  release(): void;
}

/** What the acceptor is built with. */
export interface AcceptorOptions {
  log: Logger;
  /**
   * Where lines a stranger can trigger at will go (refusals, timeouts, bad hellos): a rate-limited
   * logger (rateLimitedLogger), so a flood writes one summary line per interval. Default: `log`.
   */
  refusalLog?: Logger;
  metrics: Metrics;
  maxUnauthenticated?: number;
  maxPerSource?: number;
  /**
   * Extra unfinished handshakes allowed from `source` (a sourceKey): the live client's own address
   * opens its data channels in bursts (up to MAX_CHANNELS_WANTED at once), which the per-source cap
   * for strangers must not refuse. Default: none.
   */
  extraPerSource?(source: string): number;
  firstFrameTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** A connection silent this long in the middle of a frame is closed (PARTIAL_FRAME_TIMEOUT_MS). */
  partialFrameTimeoutMs?: number;
  /** Takes over after the first frame; throws or rejects to close the connection. */
  dispatch(first: ClientMessage, hs: Handshaking): Promise<void> | void;
}

/** Accepts connections on the control port. */
export class Acceptor {
  readonly #o: AcceptorOptions;
  readonly #log: Logger;
  readonly #maxTotal: number;
  readonly #maxPerSource: number;
  readonly #firstMs: number;
  readonly #totalMs: number;
  readonly #perSource = new Map<string, number>();
  #total = 0;

  constructor(opts: AcceptorOptions) {
    this.#o = opts;
    this.#log = opts.refusalLog ?? opts.log;
    this.#maxTotal = opts.maxUnauthenticated ?? MAX_UNAUTHENTICATED_CONNECTIONS;
    this.#maxPerSource = opts.maxPerSource ?? MAX_UNAUTHENTICATED_PER_SOURCE;
    this.#totalMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.#firstMs = Math.min(opts.firstFrameTimeoutMs ?? FIRST_FRAME_TIMEOUT_MS, this.#totalMs);
  }

  /** Connections in their handshake now (total, and from the busiest source). */
  get inHandshake(): number {
    return this.#total;
  }

  /** A new connection on the control port. */
  accept(socket: Socket): void {
    const log = this.#log;
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const address = socket.remoteAddress;
    const peer = `${address}:${socket.remotePort}`;
    const source = sourceKey(address);
    const fromSource = this.#perSource.get(source) ?? 0;
    const maxFromSource = this.#maxPerSource + (this.#o.extraPerSource?.(source) ?? 0);
    if (this.#total >= this.#maxTotal || fromSource >= maxFromSource) {
      const perSource = fromSource >= maxFromSource;
      log.warn('connection refused: too many handshakes in progress', {
        peer,
        limit: perSource ? `${maxFromSource} per source` : `${this.#maxTotal} in total`,
      });
      this.#o.metrics.authFailed(perSource ? 'handshakes_per_source' : 'handshakes_total', { peer });
      socket.destroy();
      return;
    }
    this.#total += 1;
    this.#perSource.set(source, fromSource + 1);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.#total -= 1;
      const n = (this.#perSource.get(source) ?? 1) - 1;
      if (n <= 0) this.#perSource.delete(source);
      else this.#perSource.set(source, n);
      clearTimeout(timer);
    };

    const conn: ServerConnection = new FramedConnection(
      socket,
      decodeClientMessage,
      this.#o.partialFrameTimeoutMs !== undefined
        ? { partialFrameTimeoutMs: this.#o.partialFrameTimeoutMs }
        : {},
    );
    conn.onClose(release);
    // One deadline: first the short one for the first frame, then what is left of the whole budget.
    const started = Date.now();
    const expire = (what: string) => {
      if (!held) return;
      log.debug('handshake timed out', { peer, what });
      conn.close(new ProtocolError('ERR_HANDSHAKE_TIMEOUT', `${what} did not arrive in time`));
    };
    let timer = setTimeout(() => expire('the first frame'), this.#firstMs);
    const hs: Handshaking = {
      conn,
      peer,
      address,
      timeLeft: () => Math.max(1, started + this.#totalMs - Date.now()),
      release,
    };

    void (async () => {
      let first: ClientMessage;
      try {
        first = await conn.receive();
      } catch (err) {
        release();
        if (isProtocolError(err) && err.code === 'ERR_VERSION_MISMATCH') {
          log.warn('client on another protocol version refused', { peer, error: err });
          this.#o.metrics.authFailed('version_mismatch', { peer });
          failAndClose(conn, 'version_mismatch', err.message);
        } else {
          log.debug('connection dropped before its hello', { peer, error: err as Error });
          conn.close();
        }
        return;
      }
      clearTimeout(timer);
      if (held) timer = setTimeout(() => expire('the handshake'), hs.timeLeft());
      try {
        await this.#o.dispatch(first, hs);
      } catch (err) {
        release();
        log.debug('connection closed during its handshake', { peer, error: err as Error });
        conn.close();
      }
    })();
  }
}
