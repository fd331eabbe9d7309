/**
 * TunnelRegistry: the public listeners of one session. OpenTunnel opens a port (if the server allows it
 * for this key), CloseTunnel closes it; every outcome is reported with a TunnelStatus.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type PortRange, portAllowed } from '../identity/index.js';
import { MAX_TUNNELS_PER_SESSION } from '../protocol/limits.js';
import type { OpenTunnel, TunnelReasonName, TunnelStatus } from '../protocol/messages.js';
import type { Logger } from '../util/logger.js';
import type { Metrics, TunnelCounters } from './metrics.js';

interface OpenListener {
  tunnelId: number;
  name: string;
  port: number;
  server: Server;
  counters: TunnelCounters;
}

/** What the registry reports and where it sends external connections. */
export interface RegistryHooks {
  status(msg: TunnelStatus): void;
  incoming(tunnelId: number, counters: TunnelCounters, socket: Socket): void;
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
  metrics: Metrics;
  log: Logger;
  hooks: RegistryHooks;
}

/** One session's tunnels. */
export class TunnelRegistry {
  readonly #tunnels = new Map<number, OpenListener | 'opening'>();
  readonly #opts: RegistryOptions;

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
  }

  /** Ports open now. */
  get ports(): number[] {
    return [...this.#tunnels.values()].flatMap((t) => (t === 'opening' ? [] : [t.port]));
  }

  /** Handles OpenTunnel. */
  open(msg: OpenTunnel): void {
    const { tunnelId, remotePort: port, name } = msg;
    const refuse = (reason: TunnelReasonName, message: string) => {
      this.#opts.log.warn('tunnel refused', { tunnel: name, port, reason });
      this.#opts.hooks.status({
        type: 'TunnelStatus',
        tunnelId,
        state: 'refused',
        reason,
        port: 0,
        address: '',
        message,
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
    if (!portAllowed(port, this.#opts.serverRanges) || !portAllowed(port, this.#opts.keyRanges)) {
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
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      this.#opts.hooks.incoming(tunnelId, counters, socket),
    );
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
      this.#tunnels.set(tunnelId, { tunnelId, name, port, server, counters });
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
      });
    });
  }

  /** Handles CloseTunnel (and closes on session end). Established connections are left alone. */
  close(tunnelId: number, report = true): void {
    const t = this.#tunnels.get(tunnelId);
    if (t === undefined) return;
    this.#tunnels.delete(tunnelId);
    if (t !== 'opening') {
      t.server.close();
      this.#opts.log.info('tunnel closed', { tunnel: t.name, port: t.port });
    }
    this.#opts.hooks.tunnelClosed(tunnelId);
    if (report) {
      this.#opts.hooks.status({
        type: 'TunnelStatus',
        tunnelId,
        state: 'closed',
        reason: 'closed_by_client',
        port: t === 'opening' ? 0 : t.port,
        address: '',
        message: '',
      });
    }
  }

  /** Closes every listener (session end). */
  closeAll(): void {
    for (const id of [...this.#tunnels.keys()]) this.close(id, false);
  }
}
