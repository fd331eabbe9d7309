/**
 * ConnectionPairer: for each external connection, asks the client for a data channel (IncomingConn)
 * and pairs the channel that claims it (DataConnReady) with the waiting socket. Waiting connections
 * have a timeout and a cap; a channel can only claim a connection of its own session.
 */
import type { Socket } from 'node:net';
import { MAX_PENDING_PAIRINGS, PAIRING_TIMEOUT_MS } from '../protocol/limits.js';
import type { ServerConnection } from '../transport/handshake.js';
import { type DataChannel, relay } from '../transport/relay.js';
import type { Logger } from '../util/logger.js';
import type { TunnelCounters } from './metrics.js';

/** What the pairer needs to know of a session. */
export interface PairingSession {
  readonly closed: boolean;
  sendIncoming(connId: number, tunnelId: number, peer: string): void;
  /** Tracks a paired data channel, so a revoked session can close it. */
  adoptChannel(conn: ServerConnection): void;
  /** Keeps an idle, proven data channel; false when it may not (the caller closes it). */
  addIdle(conn: ServerConnection): boolean;
}

interface Pending {
  socket: Socket;
  session: PairingSession;
  tunnelId: number;
  counters: TunnelCounters;
  timer: NodeJS.Timeout;
  log: Logger;
}

/** Pairs external connections with data channels. */
export class ConnectionPairer {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly #timeoutMs: number;
  readonly #max: number;
  readonly #log: Logger;

  constructor(opts: { log: Logger; timeoutMs?: number; maxPending?: number }) {
    this.#log = opts.log;
    this.#timeoutMs = opts.timeoutMs ?? PAIRING_TIMEOUT_MS;
    this.#max = opts.maxPending ?? MAX_PENDING_PAIRINGS;
  }

  /** External connections waiting for their data channel. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** A new external connection on a tunnel's public port (the socket is paused until paired). */
  incoming(session: PairingSession, tunnelId: number, counters: TunnelCounters, socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.#pending.size >= this.#max || session.closed) {
      counters.pairingFailures += 1;
      this.#log.warn('external connection refused: too many waiting for a data channel', {
        peer,
        port: counters.port,
      });
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const connId = this.#allocateId();
    const log = this.#log.child({ conn: connId, tunnel: counters.name });
    const timer = setTimeout(() => {
      if (this.#pending.delete(connId)) {
        counters.pairingFailures += 1;
        log.warn('no data channel came for an external connection; closing it', {
          peer,
          timeoutMs: this.#timeoutMs,
        });
        socket.destroy();
      }
    }, this.#timeoutMs);
    this.#pending.set(connId, { socket, session, tunnelId, counters, timer, log });
    socket.on('error', () => this.fail(connId, 'external connection failed'));
    socket.on('close', () => this.fail(connId, 'external peer left before pairing'));
    log.debug('external connection', { peer });
    session.sendIncoming(connId, tunnelId, peer);
  }

  /** The client could not serve conn_id (its local target refused): close the external side now. */
  fail(connId: number, why: string): void {
    const p = this.#pending.get(connId);
    if (!p) return;
    this.#pending.delete(connId);
    clearTimeout(p.timer);
    p.counters.pairingFailures += 1;
    p.log.debug('external connection closed before pairing', { why });
    if (typeof p.socket.resetAndDestroy === 'function' && !p.socket.destroyed) p.socket.resetAndDestroy();
    else p.socket.destroy();
  }

  /** A proven data channel claims conn_id. Returns false (and the caller closes it) when it may not. */
  pair(session: PairingSession, connId: number, channel: ServerConnection): boolean {
    const p = this.#pending.get(connId);
    if (!p || p.session !== session) return false;
    this.#pending.delete(connId);
    clearTimeout(p.timer);
    p.socket.removeAllListeners('error');
    p.socket.removeAllListeners('close');
    const { counters, socket, log } = p;
    counters.activeConnections += 1;
    counters.totalConnections += 1;
    session.adoptChannel(channel);
    relay(channel as unknown as DataChannel, socket, {
      onToSocket: (n) => {
        counters.bytesOut += n;
      },
      onFromSocket: (n) => {
        counters.bytesIn += n;
      },
      onEnd: (end) => {
        counters.activeConnections -= 1;
        log.debug('connection closed', {
          clean: end.clean,
          error: end.error,
          bytesIn: end.bytesFromSocket,
          bytesOut: end.bytesToSocket,
        });
      },
      // A channel that ended cleanly waits for the client's next claim: no new TCP connection and
      // handshake per external connection.
      reuse: () => {
        if (!session.addIdle(channel)) return false;
        this.serveIdle(session, channel);
        return true;
      },
    });
    socket.resume();
    return true;
  }

  /** Waits on an idle data channel for the client to claim a connection with it. */
  serveIdle(session: PairingSession, channel: ServerConnection): void {
    channel.receive().then(
      (claim) => {
        if (claim.type !== 'DataConnReady') {
          this.#log.debug('idle data channel sent something other than DataConnReady', { got: claim.type });
          channel.close();
        } else if (!this.pair(session, claim.connId, channel)) {
          channel.send({
            type: 'Error',
            streamId: claim.connId,
            code: 'not_found',
            message: 'no such connection',
          });
          channel.stream.end();
          setTimeout(() => channel.close(), 1000).unref();
        }
      },
      () => channel.close(),
    );
  }

  /** Closes every waiting connection of a session (it ended). */
  dropSession(session: PairingSession): void {
    for (const [id, p] of this.#pending) if (p.session === session) this.fail(id, 'session ended');
  }

  /** Closes every waiting connection of one tunnel. */
  dropTunnel(session: PairingSession, tunnelId: number): void {
    for (const [id, p] of this.#pending)
      if (p.session === session && p.tunnelId === tunnelId) this.fail(id, 'tunnel closed');
  }

  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = this.#nextId >= 0xffff_ffff ? 1 : this.#nextId + 1;
      if (!this.#pending.has(id)) return id;
    }
  }
}
