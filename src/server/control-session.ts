/**
 * One authenticated client's control session: its control channel, its tunnels (TunnelRegistry) and
 * its data channels (ChannelBroker). Heartbeats keep it alive; silence for three intervals ends it.
 * The session can also ask the client for a sign of life at once (probe), which the broker uses
 * before trusting it with visitors and the session manager before refusing a second login.
 */
import type { AddressBlockOption, AllowListEntry, PortRange } from '../identity/index.js';
import type { SessionKeys } from '../protocol/handshake-machines.js';
import { MAX_AUTH_PORT_RANGES } from '../protocol/limits.js';
import { type ClientMessage, PROTOCOL_VERSION, type ServerMessage } from '../protocol/messages.js';
import { sourceKey } from '../transport/addresses.js';
import type { ServerConnection, SessionGrant } from '../transport/handshake.js';
import type { Logger } from '../util/logger.js';
import { type BrokerLimits, type BrokerTunnel, ChannelBroker } from './channel-broker.js';
import { AnswerTime, probeDeadlineMs } from './client-liveness.js';
import type { Metrics } from './metrics.js';
import { intersectRanges } from './port-ranges.js';
import { type OpenTunnelInfo, type TunnelCeilings, TunnelRegistry } from './tunnel-registry.js';

/** What every session of a server shares. */
export interface ServerContext {
  log: Logger;
  metrics: Metrics;
  heartbeatMs: number;
  bindHost: string;
  displayHost: string;
  serverRanges: readonly PortRange[];
  /**
   * Where lines that a peer can repeat at will go (refused logins, refused visitors, unproven data
   * channels): a rate-limited logger, so a flood is one summary line per interval. Default: `log`.
   */
  refusalLog?: Logger;
  /** Overrides of the broker's bounds (tests). */
  brokerLimits?: Partial<BrokerLimits>;
  /** Whether tunnels that ask for zstd get it (this Node has zstd, unless a test says otherwise). */
  zstd: boolean;
}

/** A client session. */
export class ControlSession {
  readonly sessionId: Buffer;
  readonly sessionSecret: Buffer;
  readonly clientKey: Buffer;
  readonly fingerprint: string;
  /** The key's comment in the allow-list, as written there (escape it before showing it). */
  readonly comment: string;
  /** The client's control-channel address, "host:port". */
  readonly peer: string;
  /** The client's address alone (its data channels come from there). */
  readonly clientAddress: string | undefined;
  /** That address as the acceptor counts sources (sourceKey), worked out once. */
  readonly clientSource: string | undefined;
  /** When the session was established (Date.now()). */
  readonly since = Date.now();
  readonly log: Logger;
  /** The session's refusals (rate-limited), with its `client` field. */
  readonly refusalLog: Logger;
  readonly broker: ChannelBroker;
  closed = false;
  readonly #conn: ServerConnection;
  readonly #ctx: ServerContext;
  readonly #registry: TunnelRegistry;
  #keyRanges: readonly PortRange[];
  readonly #ceilings: TunnelCeilings;
  #idleTimer: NodeJS.Timeout | undefined;
  #probe:
    | { promise: Promise<boolean>; resolve: (alive: boolean) => void; timer: NodeJS.Timeout; sentAt: number }
    | undefined;
  /** How long the client's answers to probes take: the deadline of the next one grows with it. */
  readonly #answerTime = new AnswerTime();
  #probeSeq = 0x8000_0000;
  readonly #onClosed: (s: ControlSession) => void;

  constructor(opts: {
    conn: ServerConnection;
    keys: SessionKeys;
    entry: AllowListEntry;
    ctx: ServerContext;
    peer: string;
    onClosed: (s: ControlSession) => void;
  }) {
    this.#conn = opts.conn;
    this.#ctx = opts.ctx;
    this.#onClosed = opts.onClosed;
    this.sessionId = opts.keys.sessionId;
    this.sessionSecret = opts.keys.sessionSecret;
    this.clientKey = opts.entry.publicRaw;
    this.fingerprint = opts.entry.fingerprint;
    this.comment = opts.entry.comment;
    this.peer = opts.peer;
    this.clientAddress = remoteAddressOf(opts.conn);
    this.clientSource = this.clientAddress === undefined ? undefined : sourceKey(this.clientAddress);
    this.#keyRanges = opts.entry.options.permitListen;
    this.#ceilings = keyCeilings(opts.entry);
    this.log = opts.ctx.log.child({ client: opts.entry.fingerprint });
    this.refusalLog = (opts.ctx.refusalLog ?? opts.ctx.log).child({ client: opts.entry.fingerprint });
    this.broker = new ChannelBroker({
      session: {
        wantChannels: (count) => this.#send({ type: 'ChannelsWanted', count }),
        probe: () => this.probe(),
        lastHeardAt: () => this.#conn.lastReceivedAt,
      },
      log: this.log,
      refusalLog: this.refusalLog,
      heartbeatMs: opts.ctx.heartbeatMs,
      clientAddress: this.clientAddress,
      ...(opts.ctx.brokerLimits ? { limits: opts.ctx.brokerLimits } : {}),
    });
    this.#registry = new TunnelRegistry({
      bindHost: opts.ctx.bindHost,
      displayHost: opts.ctx.displayHost,
      serverRanges: opts.ctx.serverRanges,
      keyRanges: this.#keyRanges,
      ceilings: this.#ceilings,
      client: { peer: opts.peer, fingerprint: opts.entry.fingerprint },
      keyPermitFrom: opts.entry.options.permitFrom,
      zstd: opts.ctx.zstd,
      metrics: opts.ctx.metrics,
      log: this.log,
      refusalLog: this.refusalLog,
      hooks: {
        status: (msg) => this.#send(msg),
        incoming: (tunnel, socket) => this.broker.visitor(socket, tunnel),
        tunnelClosed: (tunnelId) => this.broker.dropTunnel(tunnelId),
      },
    });
  }

  /** What AuthOk grants this session: the heartbeat, the ports the key may open, its ceilings. */
  grant(): SessionGrant {
    return {
      heartbeatMs: this.#ctx.heartbeatMs,
      allowedPorts: intersectRanges(this.#ctx.serverRanges, this.#keyRanges).slice(0, MAX_AUTH_PORT_RANGES),
      ...this.#ceilings,
    };
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

  /** The tunnels this session has open (for `mtt status`). */
  tunnels(): OpenTunnelInfo[] {
    return this.#registry.list();
  }

  /** Ports this session has open. */
  get ports(): number[] {
    return this.#registry.ports;
  }

  /**
   * Asks the client for a sign of life (a Heartbeat it must answer). Resolves true as soon as
   * anything arrives on the control channel, false after `timeoutMs` of silence or on close. The
   * default deadline is probeDeadlineMs: at least LIVENESS_PROBE_TIMEOUT_MS, longer for a client whose
   * answers all took long (a long round trip), bounded by PROBE_TIMEOUT_MAX_MS.
   */
  probe(timeoutMs: number = this.probeDeadlineMs()): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.#probe) return this.#probe.promise;
    let resolve!: (alive: boolean) => void;
    const promise = new Promise<boolean>((r) => {
      resolve = r;
    });
    // The verdict waits one turn of the event loop after the deadline, so that what has arrived is
    // read first: when the server's own loop was held up past the deadline (a loaded machine), the
    // timer fires before the answer already waiting in the socket is read, and a live client would
    // be called dead.
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (this.#probe?.promise === promise) this.#settleProbe(false);
      });
    }, timeoutMs);
    timer.unref();
    this.#probe = { promise, resolve, timer, sentAt: Date.now() };
    this.#probeSeq = this.#probeSeq >= 0xffff_ffff ? 0x8000_0000 : this.#probeSeq + 1;
    this.#send({ type: 'Heartbeat', reply: false, seq: this.#probeSeq });
    return promise;
  }

  /**
   * The key's permitlisten or permitfrom changed: tunnels outside the new ranges close (reason
   * revoked) with their connections, only the new ranges may be opened from now on, and only
   * visitors the new permitfrom allows get in.
   */
  narrow(
    keyRanges: readonly PortRange[],
    keyFrom?: readonly AddressBlockOption[],
    entry?: AllowListEntry,
  ): Set<number> {
    this.#keyRanges = keyRanges;
    return this.#registry.narrow(keyRanges, keyFrom, entry ? keyCeilings(entry) : undefined);
  }

  /** Whether a visitor at `address` may use `tunnel` now (after narrow()). */
  permits(tunnel: BrokerTunnel, address: string | undefined): boolean {
    return this.#registry.permits(tunnel, address);
  }

  /**
   * Ends the session: its listeners and waiting visitors go at once, so the same key can log in again
   * without "port already in use". Relayed connections survive unless `revoke` is set.
   */
  close(reason: string, opts: { revoke?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#settleProbe(false);
    this.#registry.closeAll();
    if (opts.revoke) {
      this.#send({ type: 'AuthFail', reason: 'revoked', version: PROTOCOL_VERSION, message: reason });
      this.broker.revoke(reason);
    } else {
      this.broker.close(reason);
    }
    this.#conn.end();
    this.log.info('client session ended', { reason });
    this.#onClosed(this);
  }

  /** The deadline the next probe gets (see probe()). */
  probeDeadlineMs(): number {
    return probeDeadlineMs(this.#answerTime.ms);
  }

  #settleProbe(alive: boolean): void {
    const p = this.#probe;
    if (!p) return;
    this.#probe = undefined;
    clearTimeout(p.timer);
    if (alive) this.#answerTime.sample(Date.now() - p.sentAt);
    p.resolve(alive);
  }

  #send(msg: ServerMessage): void {
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
    this.#settleProbe(true);
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
        this.log.warn('client reported an error', { code: msg.code, message: msg.message });
        return;
      default:
        this.log.warn('protocol error on the control channel', { got: msg.type });
        this.close(`unexpected ${msg.type} on the control channel`);
    }
  }
}

/** The key's per-tunnel ceilings (maxconnections, ratelimit in the allow-list); 0 = none. */
function keyCeilings(entry: AllowListEntry): TunnelCeilings {
  return { maxConnections: entry.options.maxConnections ?? 0, rateLimit: entry.options.rateLimit ?? 0 };
}

function remoteAddressOf(conn: ServerConnection): string | undefined {
  return (conn.stream as { remoteAddress?: string }).remoteAddress;
}
