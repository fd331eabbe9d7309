/**
 * TunnelRegistry: the public listeners of one session. OpenTunnel opens a port (if the server allows it
 * for this key), CloseTunnel closes it; every outcome is reported with a TunnelStatus.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type PortRange, portAllowed } from '../identity/index.js';
import type { CompressedCodec } from '../protocol/frame-codec.js';
import { MAX_TUNNELS_PER_SESSION } from '../protocol/limits.js';
import type { OpenTunnel, TunnelReasonName, TunnelStatus } from '../protocol/messages.js';
import { TokenBucket } from '../transport/rate-limiter.js';
import { resetSocket } from '../transport/sockets.js';
import type { Logger } from '../util/logger.js';
import type { BrokerTunnel } from './channel-broker.js';
import type { Metrics, VisitorRefusal } from './metrics.js';
import { type Block, visitorPermitted } from './visitor-filter.js';

interface OpenListener extends BrokerTunnel {
  server: Server;
  /** The effective limits sent back in TunnelStatus (enforced from phase 2 on). */
  maxConnections: number;
  rateLimit: number;
}

/** A key's ceilings on each tunnel; 0 = none. */
export interface TunnelCeilings {
  maxConnections: number;
  rateLimit: number;
}

/** What the registry reports and where it sends external connections. */
export interface RegistryHooks {
  status(msg: TunnelStatus): void;
  incoming(tunnel: BrokerTunnel, socket: Socket): void;
  tunnelClosed(tunnelId: number): void;
}

/** What a registry is built with. */
export interface RegistryOptions {
  /** Address the public listeners bind to. */
  bindHost: string;
  /** Host part of the public address reported to the client ('' when the bind address is a wildcard). */
  displayHost: string;
  /** Ports the server allows at all (--allow-ports). */
  serverRanges: readonly PortRange[];
  /** Ports this key may open (permitlisten). */
  keyRanges: readonly PortRange[];
  /** The key's per-tunnel ceilings. */
  ceilings: TunnelCeilings;
  /** The client's control-channel address and key fingerprint, for the refusals `mtt status` lists. */
  client?: { peer: string; fingerprint: string };
  /** Visitors this key's tunnels accept (permitfrom); undefined = anyone. */
  keyPermitFrom?: readonly Block[] | undefined;
  /**
   * Whether this server grants zstd to a tunnel that asks for it: it must decode and encode codec 2,
   * so only when its Node has zstd (zstdAvailable()); false on an older Node.
   */
  zstd: boolean;
  metrics: Metrics;
  log: Logger;
  /** Where refused visitors are logged: rate-limited, since a visitor can trigger it at will (default: log). */
  refusalLog?: Logger;
  hooks: RegistryHooks;
}

/** An open tunnel, as `mtt status` shows it. */
export interface OpenTunnelInfo {
  tunnelId: number;
  name: string;
  port: number;
  /** The effective limits (0 = none). */
  maxConnections: number;
  rateLimit: number;
  /** Whether the tunnel's own permitFrom narrows who may connect (the key's permitfrom aside). */
  permitFrom: boolean;
  /** The codec its frames are compressed with (zstd only when granted), or false for none. */
  compress: CompressedCodec | false;
}

/** One session's tunnels. */
export class TunnelRegistry {
  readonly #tunnels = new Map<number, OpenListener | 'opening'>();
  readonly #opts: RegistryOptions;
  #keyRanges: readonly PortRange[];
  #keyFrom: readonly Block[] | undefined;
  #ceilings: TunnelCeilings;

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
    this.#ceilings = opts.ceilings;
    this.#keyRanges = opts.keyRanges;
    this.#keyFrom = opts.keyPermitFrom;
  }

  /** Whether a visitor at `address` may use `tunnel` under the key's and the tunnel's lists now. */
  permits(tunnel: BrokerTunnel, address: string | undefined): boolean {
    return visitorPermitted(address, this.#keyFrom, tunnel.permitFrom);
  }

  /** Ports open now. */
  get ports(): number[] {
    return [...this.#tunnels.values()].flatMap((t) => (t === 'opening' ? [] : [t.port]));
  }

  /** The tunnels listening now (not those still opening), by tunnel id. */
  list(): OpenTunnelInfo[] {
    return [...this.#tunnels.values()]
      .flatMap((t) => (t === 'opening' ? [] : [t]))
      .map((t) => ({
        tunnelId: t.tunnelId,
        name: t.name,
        port: t.port,
        maxConnections: t.maxConnections,
        rateLimit: t.rateLimit,
        permitFrom: t.permitFrom !== undefined,
        compress: t.compress,
      }))
      .sort((a, b) => a.tunnelId - b.tunnelId);
  }

  /** Handles OpenTunnel. */
  open(msg: OpenTunnel): void {
    const { tunnelId, remotePort: port, name } = msg;
    const maxConnections = effective(msg.maxConnections, this.#ceilings.maxConnections);
    const rateLimit = effective(msg.rateLimit, this.#ceilings.rateLimit);
    const refuse = (reason: TunnelReasonName, message: string) => {
      this.#opts.log.warn('tunnel refused', { tunnel: name, port, reason });
      const client = this.#opts.client;
      this.#opts.metrics.tunnelRefused({
        reason,
        tunnel: name,
        port,
        ...(client ? { peer: client.peer, client: client.fingerprint } : {}),
      });
      this.#opts.hooks.status({
        type: 'TunnelStatus',
        tunnelId,
        state: 'refused',
        reason,
        port: 0,
        address: '',
        message,
        maxConnections,
        rateLimit,
        zstd: false,
      });
    };
    if (this.#tunnels.has(tunnelId)) {
      refuse('duplicate_tunnel', `tunnel id ${tunnelId} is already open`);
      return;
    }
    if (this.#tunnels.size >= MAX_TUNNELS_PER_SESSION) {
      refuse('too_many_tunnels', `at most ${MAX_TUNNELS_PER_SESSION} tunnels per client`);
      return;
    }
    if (port < 1 || port > 65535) {
      refuse('invalid', `port ${port} is not a TCP port`);
      return;
    }
    if (!portAllowed(port, this.#opts.serverRanges) || !portAllowed(port, this.#keyRanges)) {
      refuse('port_not_allowed', `port ${port} is not allowed for this key on this server`);
      return;
    }
    for (const t of this.#tunnels.values()) {
      if (t !== 'opening' && t.port === port) {
        refuse('port_in_use', `port ${port} is already open by tunnel "${t.name}"`);
        return;
      }
    }
    this.#tunnels.set(tunnelId, 'opening');
    const counters = this.#opts.metrics.tunnel(port, name);
    // zstd only when asked for and this server has it; otherwise LZ4, and the answer says so.
    const zstd = msg.compress === 'zstd' && this.#opts.zstd;
    const tunnel: BrokerTunnel = {
      tunnelId,
      name,
      port,
      compress: msg.compress === false ? false : zstd ? 'zstd' : 'lz4',
      counters,
      ...(msg.permitFrom.length > 0 ? { permitFrom: msg.permitFrom } : {}),
      // One bucket per direction, shared by the tunnel's connections: the limit is the tunnel's.
      ...(rateLimit > 0
        ? { limit: { in: new TokenBucket(rateLimit), out: new TokenBucket(rateLimit) } }
        : {}),
    };
    // Visitors holding a connection now (waiting for a channel or relayed), for maxConnections.
    let open = 0;
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      socket.on('error', () => {});
      const peer = `${socket.remoteAddress}:${socket.remotePort}`;
      // Closed at accept: a visitor refused here never reaches the client.
      const refuse = (reason: VisitorRefusal, why: string) => {
        counters.refused[reason] += 1;
        this.#opts.metrics.visitorRefused({ reason, tunnel: name, port, peer });
        (this.#opts.refusalLog ?? this.#opts.log).warn(`visitor refused: ${why}`, {
          tunnel: name,
          port,
          peer,
        });
        resetSocket(socket);
      };
      if (!this.permits(tunnel, socket.remoteAddress)) {
        refuse('not_permitted', 'its address is not allowed for this tunnel');
        return;
      }
      if (maxConnections > 0 && open >= maxConnections) {
        refuse('max_connections', 'the tunnel has its most connections open');
        return;
      }
      open += 1;
      socket.once('close', () => {
        open -= 1;
      });
      this.#opts.hooks.incoming(tunnel, socket);
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#tunnels.get(tunnelId) !== 'opening') {
        this.#opts.log.error('tunnel listener failed', { tunnel: name, port, error: err });
        return;
      }
      this.#tunnels.delete(tunnelId);
      if (err.code === 'EADDRINUSE') refuse('port_in_use', `port ${port} is in use on the server`);
      else
        refuse('bind_failed', `cannot listen on ${this.#opts.bindHost}:${port}: ${err.code ?? err.message}`);
    });
    server.listen({ host: this.#opts.bindHost, port, exclusive: true }, () => {
      if (this.#tunnels.get(tunnelId) !== 'opening') {
        server.close();
        return;
      }
      if (!portAllowed(port, this.#keyRanges)) {
        // The allow-list narrowed while the port was being opened.
        server.close();
        this.#tunnels.delete(tunnelId);
        refuse('port_not_allowed', `port ${port} is not allowed for this key on this server`);
        return;
      }
      this.#tunnels.set(tunnelId, { ...tunnel, server, maxConnections, rateLimit });
      counters.limits = { maxConnections, rateLimit };
      const address = `${this.#opts.displayHost}:${port}`;
      this.#opts.log.info('tunnel open', { tunnel: name, listen: `${this.#opts.bindHost}:${port}` });
      this.#opts.hooks.status({
        type: 'TunnelStatus',
        tunnelId,
        state: 'active',
        reason: 'none',
        port,
        address,
        message: '',
        maxConnections,
        rateLimit,
        zstd,
      });
    });
  }

  /** Handles CloseTunnel (and closes on session end). Established connections are left alone. */
  close(tunnelId: number, report: TunnelReasonName | false = 'closed_by_client', message = ''): void {
    const t = this.#tunnels.get(tunnelId);
    if (t === undefined) return;
    this.#tunnels.delete(tunnelId);
    if (t !== 'opening') {
      t.server.close();
      t.counters.limits = { maxConnections: 0, rateLimit: 0 };
      this.#opts.log.info('tunnel closed', {
        tunnel: t.name,
        port: t.port,
        reason: report || 'session ended',
      });
    }
    this.#opts.hooks.tunnelClosed(tunnelId);
    if (report) {
      this.#opts.hooks.status({
        type: 'TunnelStatus',
        tunnelId,
        state: 'closed',
        reason: report,
        port: t === 'opening' ? 0 : t.port,
        address: '',
        message,
        maxConnections: t === 'opening' ? 0 : t.maxConnections,
        rateLimit: t === 'opening' ? 0 : t.rateLimit,
        zstd: false,
      });
    }
  }

  /**
   * The key's permitlisten changed: from now on only `keyRanges` may be opened, and every open tunnel
   * outside them closes with reason `revoked`. Returns the ports it closed.
   */
  narrow(
    keyRanges: readonly PortRange[],
    keyFrom?: readonly Block[],
    ceilings?: TunnelCeilings,
  ): Set<number> {
    this.#keyRanges = keyRanges;
    this.#keyFrom = keyFrom;
    if (ceilings) this.#ceilings = ceilings;
    const closed = new Set<number>();
    for (const [id, t] of [...this.#tunnels]) {
      if (t === 'opening' || portAllowed(t.port, keyRanges)) continue;
      closed.add(t.port);
      this.close(id, 'revoked', `port ${t.port} is no longer allowed for this key`);
    }
    return closed;
  }

  /** Closes every listener (session end). */
  closeAll(): void {
    for (const id of [...this.#tunnels.keys()]) this.close(id, false);
  }
}

/** A requested limit under a ceiling; 0 means none on either side. */
function effective(requested: number, ceiling: number): number {
  if (ceiling === 0) return requested;
  if (requested === 0) return ceiling;
  return Math.min(requested, ceiling);
}
