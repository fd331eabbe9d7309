/**
 * ChannelBroker: the one owner of a session's data channels on the server, from proof to reuse to
 * close. It holds the visitors waiting for a channel, the proven idle channels, the channels being
 * proved, and the channels carrying a visitor; it assigns an idle channel to each visitor (sending
 * IncomingConn on it, then the visitor's bytes), takes a channel back after a clean end, and ends
 * channels for every reason they end. docs/PROTOCOL.md, "Data channels", is the wire side of this.
 * Two jobs it hands off: relaying one visitor and counting it (visitor-relay.ts), and probing a client
 * that may be gone (client-liveness.ts).
 *
 * Over 400 lines on purpose: this is the one owner of a data channel's lifecycle (proving, idle,
 * assigned, reused, closed) and of the visitors waiting for one. Every transition moves a channel or a
 * visitor between the maps below, so they stay in one class that a reader can follow from top to end;
 * split further, the lifecycle would again be spread over files calling each other through hooks.
 */
import type { Socket } from 'node:net';
import {
  CHANNEL_WAIT_TIMEOUT_MS,
  DATA_PROOF_TIMEOUT_MS,
  LIVENESS_FRESH_MS,
  MAX_CHANNELS_WANTED,
  MAX_IDLE_DATA_CHANNELS,
  MAX_UNPROVEN_DATA_CHANNELS,
  MAX_UNPROVEN_FOREIGN_DATA_CHANNELS,
  MAX_WAITING_VISITORS,
} from '../protocol/limits.js';
import { sourceKey } from '../transport/addresses.js';
import type { ServerConnection } from '../transport/handshake.js';
import type { RelayHandle } from '../transport/relay.js';
import { resetSocket } from '../transport/sockets.js';
import type { Logger } from '../util/logger.js';
import { ClientLiveness } from './client-liveness.js';
import { type BrokerTunnel, incomingConn, relayVisitor } from './visitor-relay.js';

export type { BrokerTunnel } from './visitor-relay.js';

/** What the broker needs of its session's control channel. */
export interface BrokerSession {
  /** Asks the client for `count` more data channels (ChannelsWanted). */
  wantChannels(count: number): void;
  /** Asks the client for a sign of life; resolves false when none came in time. */
  probe(): Promise<boolean>;
  /** When the control channel last received anything (Date.now()). */
  lastHeardAt(): number;
}

/** Every bound of the broker; each defaults to its constant in limits.ts. */
export interface BrokerLimits {
  maxIdle: number;
  maxProving: number;
  maxProvingForeign: number;
  proofTimeoutMs: number;
  maxWaiting: number;
  channelWaitMs: number;
  freshMs: number;
  maxWanted: number;
}

/** How to build a broker. */
export interface BrokerOptions {
  session: BrokerSession;
  log: Logger;
  /**
   * Where refusals go (refused visitors, unproven channels): lines a peer can repeat at will, so a
   * rate-limited logger (rateLimitedLogger). Default: `log`.
   */
  refusalLog?: Logger;
  /** The heartbeat interval: idle channels silent for three of them are dropped. */
  heartbeatMs: number;
  /** The address the client's control channel came from: its channels prove within their own budget. */
  clientAddress: string | undefined;
  limits?: Partial<BrokerLimits>;
}

interface Visitor {
  socket: Socket;
  tunnel: BrokerTunnel;
  peer: string;
  timer?: NodeJS.Timeout;
  onGone?: () => void;
}

interface Assignment {
  conn: ServerConnection;
  visitor: Visitor;
  connId: number;
  at: number;
  relay?: RelayHandle;
}

/** Counts of each kind of channel and visitor, for tests and metrics. */
export interface BrokerStats {
  waiting: number;
  proving: number;
  idle: number;
  active: number;
}

/** The data channels of one session. */
export class ChannelBroker {
  readonly #o: BrokerOptions;
  readonly #l: BrokerLimits;
  readonly #log: Logger;
  readonly #refusalLog: Logger;
  readonly #waiting: Visitor[] = [];
  readonly #proving = new Map<ServerConnection, { foreign: boolean }>();
  /** Idle channels (with the unsubscribe of their close listener); the last one back is taken first. */
  readonly #idle: Array<{ conn: ServerConnection; off: () => void }> = [];
  readonly #active = new Set<Assignment>();
  readonly #clientSource: string | undefined;
  #provingForeign = 0;
  #requested = 0;
  #nextConnId = 1;
  #closed = false;
  #sweep: NodeJS.Timeout | undefined;
  readonly #liveness: ClientLiveness;
  #onDrained: (() => void) | undefined;

  constructor(opts: BrokerOptions) {
    this.#o = opts;
    this.#log = opts.log;
    this.#refusalLog = opts.refusalLog ?? opts.log;
    this.#l = {
      maxIdle: MAX_IDLE_DATA_CHANNELS,
      maxProving: MAX_UNPROVEN_DATA_CHANNELS,
      maxProvingForeign: MAX_UNPROVEN_FOREIGN_DATA_CHANNELS,
      proofTimeoutMs: DATA_PROOF_TIMEOUT_MS,
      maxWaiting: MAX_WAITING_VISITORS,
      channelWaitMs: CHANNEL_WAIT_TIMEOUT_MS,
      freshMs: LIVENESS_FRESH_MS,
      maxWanted: MAX_CHANNELS_WANTED,
      ...opts.limits,
    };
    this.#clientSource = opts.clientAddress === undefined ? undefined : sourceKey(opts.clientAddress);
    this.#sweep = setInterval(() => this.#sweepIdle(), Math.max(10, opts.heartbeatMs));
    this.#sweep.unref();
    this.#liveness = new ClientLiveness({
      freshMs: this.#l.freshMs,
      probe: () => opts.session.probe(),
      lastHeard: () => this.#lastHeard(),
      hasUnanswered: () => this.#hasUnanswered(),
      unanswered: () => {
        this.#log.warn('the client did not answer a probe; refusing visitors until it does');
        for (const v of [...this.#waiting]) this.#refuse(v, 'the client does not answer');
        for (const a of [...this.#active]) {
          if (a.conn.lastReceivedAt < a.at) a.relay?.abort(new Error('the client does not answer'));
        }
      },
    });
  }

  /** True once the session ended (channels carrying a visitor may still be relaying). */
  get closed(): boolean {
    return this.#closed;
  }

  stats(): BrokerStats {
    return {
      waiting: this.#waiting.length,
      proving: this.#proving.size,
      idle: this.#idle.length,
      active: this.#active.size,
    };
  }

  /** Ports of the tunnels whose visitors are being relayed now. */
  activePorts(): number[] {
    return [...this.#active].map((a) => a.visitor.tunnel.port);
  }

  /** Called once, after close(), when the last relayed connection has ended. */
  onDrained(listener: () => void): void {
    this.#onDrained = listener;
    this.#checkDrained();
  }

  /**
   * A keyed data channel (DataHelloAck sent) that must now prove itself: its first frame must be a
   * Heartbeat that decrypts, within the proof deadline. False when the budget is spent (the caller
   * closes the channel).
   */
  prove(conn: ServerConnection, peerAddress: string | undefined): boolean {
    if (this.#closed) return false;
    const foreign = this.#clientSource === undefined || sourceKey(peerAddress) !== this.#clientSource;
    if (
      foreign ? this.#provingForeign >= this.#l.maxProvingForeign : this.#ownProving() >= this.#l.maxProving
    ) {
      this.#refusalLog.warn('data channel refused: too many unproven channels', {
        peer: peerAddress,
        foreign,
      });
      return false;
    }
    this.#proving.set(conn, { foreign });
    if (foreign) this.#provingForeign += 1;
    // A channel we asked for has arrived (it now counts as proving, not as asked for).
    else if (this.#requested > 0) this.#requested -= 1;
    const settle = () => {
      if (this.#proving.delete(conn) && foreign) this.#provingForeign -= 1;
    };
    conn.receive(this.#l.proofTimeoutMs).then(
      (msg) => {
        settle();
        if (msg.type !== 'Heartbeat') {
          this.#refusalLog.debug('data channel closed: its first frame was not a Heartbeat', {
            got: msg.type,
          });
          conn.close();
          return;
        }
        this.#place(conn);
      },
      (err: Error) => {
        settle();
        this.#refusalLog.debug('data channel closed before its proof', { peer: peerAddress, error: err });
        conn.close();
      },
    );
    return true;
  }

  /** A visitor on a public port (its socket is paused): give it a channel, or let it wait briefly. */
  visitor(socket: Socket, tunnel: BrokerTunnel): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on('error', () => {});
    if (this.#closed) {
      this.#refuse({ socket, tunnel, peer }, 'the session has ended');
      return;
    }
    if (this.#liveness.suspect()) {
      this.#refuse({ socket, tunnel, peer }, 'the client does not answer');
      this.#liveness.watch();
      return;
    }
    const v: Visitor = { socket, tunnel, peer };
    const conn = this.#takeIdle();
    if (conn) {
      this.#assign(conn, v);
    } else if (this.#waiting.length >= this.#l.maxWaiting) {
      this.#refuse(v, `${this.#l.maxWaiting} visitors are already waiting for a data channel`);
      return;
    } else {
      this.#wait(v);
    }
    this.#liveness.watch();
  }

  /** The tunnel closed: its waiting visitors are refused (relayed ones go on). */
  dropTunnel(tunnelId: number): void {
    for (const v of [...this.#waiting]) if (v.tunnel.tunnelId === tunnelId) this.#refuse(v, 'tunnel closed');
  }

  /**
   * Resets the relayed connections of the tunnels on `ports` (all of them without `ports`), or those
   * for which `which` says true (its tunnel, the visitor's address): the key lost the right to them.
   */
  revoke(
    why: string,
    ports?: ReadonlySet<number> | ((tunnel: BrokerTunnel, visitor: string | undefined) => boolean),
  ): void {
    for (const a of [...this.#active]) {
      const hit =
        ports === undefined ||
        (typeof ports === 'function'
          ? ports(a.visitor.tunnel, a.visitor.socket.remoteAddress)
          : ports.has(a.visitor.tunnel.port));
      if (hit) a.relay?.abort(new Error(why));
    }
    if (!ports) this.close(why);
  }

  /** Visitors waiting for a channel that `which` says to refuse (an allow-list change). */
  refuseWaiting(why: string, which: (tunnel: BrokerTunnel, visitor: string | undefined) => boolean): void {
    for (const v of [...this.#waiting])
      if (which(v.tunnel, v.socket.remoteAddress)) this.#refuse(v, why, 'uncounted');
  }

  /**
   * The session ended: waiting visitors are refused, idle and unproven channels closed. Relayed
   * connections go on (a control-channel reconnect must not cut them); their channels close after.
   */
  close(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#liveness.stop();
    for (const v of [...this.#waiting]) this.#refuse(v, why);
    for (const c of [...this.#proving.keys()]) c.close();
    for (const { conn, off } of this.#idle.splice(0)) {
      off();
      conn.close();
    }
    this.#checkDrained();
  }

  #ownProving(): number {
    return this.#proving.size - this.#provingForeign;
  }

  /** A proven channel, new or back from a clean end: to a waiting visitor, else idle, else ended. */
  #place(conn: ServerConnection): boolean {
    if (this.#closed || conn.closed) {
      conn.end();
      return false;
    }
    const v = this.#waiting.shift();
    if (v) {
      this.#unwait(v);
      this.#assign(conn, v);
      return true;
    }
    if (this.#idle.length >= this.#l.maxIdle) {
      conn.end();
      return false;
    }
    this.#idle.push({ conn, off: conn.onClose(() => this.#dropIdle(conn)) });
    conn.onMessage((msg) => {
      // Keepalives are only signs of life; anything else on an idle channel is a protocol error.
      if (msg.type === 'Heartbeat') return;
      this.#log.debug('idle data channel closed: unexpected message', { got: msg.type });
      this.#dropIdle(conn);
      conn.close();
    });
    conn.onEnd(() => {
      this.#dropIdle(conn);
      conn.close();
    });
    return true;
  }

  #dropIdle(conn: ServerConnection): void {
    const i = this.#idle.findIndex((e) => e.conn === conn);
    if (i < 0) return;
    this.#idle[i]!.off();
    this.#idle.splice(i, 1);
  }

  /** The idle channel heard from last, skipping any that went silent. */
  #takeIdle(): ServerConnection | undefined {
    const staleBefore = Date.now() - 3 * this.#o.heartbeatMs;
    for (;;) {
      const e = this.#idle.pop();
      if (!e) return undefined;
      e.off();
      const { conn } = e;
      if (conn.closed) continue;
      if (conn.lastReceivedAt < staleBefore) {
        conn.close();
        continue;
      }
      return conn;
    }
  }

  #sweepIdle(): void {
    const staleBefore = Date.now() - 3 * this.#o.heartbeatMs;
    for (const { conn } of [...this.#idle]) {
      if (conn.lastReceivedAt < staleBefore) {
        this.#log.debug('idle data channel dropped: silent for three heartbeat intervals');
        this.#dropIdle(conn);
        conn.close();
      }
    }
  }

  #wait(v: Visitor): void {
    this.#waiting.push(v);
    v.timer = setTimeout(
      () => this.#refuse(v, `no data channel within ${this.#l.channelWaitMs} ms`),
      this.#l.channelWaitMs,
    );
    v.onGone = () => this.#refuse(v, 'the visitor left while waiting', 'gone');
    v.socket.once('close', v.onGone);
    const want = this.#waiting.length - this.#proving.size - this.#requested;
    if (want > 0) {
      const n = Math.min(want, this.#l.maxWanted);
      this.#requested += n;
      this.#o.session.wantChannels(n);
    }
  }

  #unwait(v: Visitor): void {
    const i = this.#waiting.indexOf(v);
    if (i >= 0) this.#waiting.splice(i, 1);
    if (v.timer) clearTimeout(v.timer);
    if (v.onGone) v.socket.off('close', v.onGone);
    if (this.#waiting.length === 0) this.#requested = 0;
  }

  /**
   * Ends a waiting visitor: 'refused' counts a pairing failure, 'uncounted' is a refusal counted
   * elsewhere, 'gone' is a visitor that left by itself (only a debug line).
   */
  #refuse(v: Visitor, why: string, kind: 'refused' | 'uncounted' | 'gone' = 'refused'): void {
    this.#unwait(v);
    const fields = { peer: v.peer, tunnel: v.tunnel.name };
    if (kind === 'gone') {
      this.#log.debug(`visitor gone: ${why}`, fields);
    } else {
      if (kind === 'refused') v.tunnel.counters.pairingFailures += 1;
      // One group per reason (the reasons are a fixed set): a flood is one summary line per reason.
      this.#refusalLog.warn(`visitor refused: ${why}`, fields);
    }
    resetSocket(v.socket);
  }

  /** Sends IncomingConn on `conn`, then relays the visitor over it: one round trip for a request. */
  #assign(conn: ServerConnection, v: Visitor): void {
    const connId = this.#allocateId();
    const hello = incomingConn(v.socket, v.tunnel.tunnelId, connId);
    if (!hello) {
      // The visitor is already gone; the channel stays usable.
      this.#refuse(v, 'the visitor left', 'gone');
      this.#place(conn);
      return;
    }
    conn.detach();
    const codec = v.tunnel.compress;
    conn.encoder.setCompression(codec ? 'auto' : 'never', codec || 'lz4');
    const a: Assignment = { conn, visitor: v, connId, at: Date.now() };
    this.#active.add(a);
    conn.send(hello);
    const log = this.#log.child({ conn: connId, tunnel: v.tunnel.name });
    log.debug('visitor assigned a data channel', { peer: v.peer });
    a.relay = relayVisitor(conn, v.socket, v.tunnel, {
      onEnd: (end) => {
        this.#active.delete(a);
        log.debug('connection closed', {
          clean: end.clean,
          error: end.error,
          bytesIn: end.bytesFromSocket,
          bytesOut: end.bytesToSocket,
        });
        this.#checkDrained();
      },
      reuse: () => this.#place(conn),
    });
  }

  /** Visitors waiting, or assigned within the wait window and not answered on their channel yet. */
  #hasUnanswered(): boolean {
    if (this.#waiting.length > 0) return true;
    const since = Date.now() - this.#l.channelWaitMs;
    for (const a of this.#active) if (a.at >= since && a.conn.lastReceivedAt < a.at) return true;
    return false;
  }

  /** The client's last sign of life on its control channel or any of its data channels. */
  #lastHeard(): number {
    let last = this.#o.session.lastHeardAt();
    for (const { conn } of this.#idle) if (conn.lastReceivedAt > last) last = conn.lastReceivedAt;
    for (const a of this.#active) if (a.conn.lastReceivedAt > last) last = a.conn.lastReceivedAt;
    return last;
  }

  #checkDrained(): void {
    if (this.#closed && this.#active.size === 0 && this.#onDrained) {
      const l = this.#onDrained;
      this.#onDrained = undefined;
      l();
    }
  }

  #allocateId(): number {
    const id = this.#nextConnId;
    this.#nextConnId = this.#nextConnId >= 0xffff_ffff ? 1 : this.#nextConnId + 1;
    return id;
  }
}
