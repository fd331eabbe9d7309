/**
 * The server: the control listener, and the parts it is made of — the allow-list (AllowListWatch),
 * the acceptor that bounds connections until their handshake is done (Acceptor), the dispatch of a
 * connection by its first frame (session-dispatch.ts) and the sessions (ControlSessionManager, each
 * with its TunnelRegistry and ChannelBroker). Start it with startServer(); stop it with close() or an
 * AbortSignal.
 */

import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import {
  type AllowListEntry,
  fingerprint,
  formatPublicKeyLine,
  type Identity,
  type PortRange,
} from '../identity/index.js';
import { zstdAvailable } from '../protocol/compression.js';
import { HEARTBEAT_INTERVAL_MS, MAX_UNPROVEN_DATA_CHANNELS } from '../protocol/limits.js';
import { type RateLimitOptions, rateLimitedLogger } from '../util/log-rate-limiter.js';
import { type Logger, silentLogger } from '../util/logger.js';
import { type MetricsListener, serveMetricsHttp } from '../util/prometheus.js';
import { Acceptor } from './acceptor.js';
import { type AdminSocket, openAdminSocket } from './admin-socket.js';
import { type ServerStatus, StatusSource } from './admin-status.js';
import { AllowListWatch } from './allow-list-watch.js';
import type { BrokerLimits } from './channel-broker.js';
import { ControlSessionManager } from './control-session-manager.js';
import { Metrics } from './metrics.js';
import { dispatch } from './session-dispatch.js';

/** Ports a server allows when none are configured: every unprivileged port. */
export const DEFAULT_ALLOW_PORTS: readonly PortRange[] = [{ low: 1024, high: 65535 }];

/** How to run a server. */
export interface ServerOptions {
  /** Control listener address; default '0.0.0.0'. */
  host?: string;
  /** Control listener port (0 picks one). */
  port: number;
  /** The server's host key. */
  identity: Identity;
  /** The allow-list file; watched, changes apply live. */
  allowedKeysPath?: string;
  /** A fixed allow-list instead of a file (tests, embedding). */
  allowList?: AllowListEntry[];
  /** Ports clients may open; default 1024-65535. */
  allowPorts?: readonly PortRange[];
  /** Address tunnel listeners bind to; default '0.0.0.0'. */
  publicHost?: string;
  /** Heartbeat interval the server asks for; a client silent for three of them is dropped. */
  heartbeatMs?: number;
  /** The whole handshake's deadline. */
  handshakeTimeoutMs?: number;
  /** The first frame's deadline. */
  firstFrameTimeoutMs?: number;
  /** A connection silent this long in the middle of a frame is closed. */
  partialFrameTimeoutMs?: number;
  /** How long a visitor waits for a data channel. */
  pairingTimeoutMs?: number;
  /** Visitors that may wait for a data channel at once. */
  maxPendingPairings?: number;
  maxUnauthenticated?: number;
  maxUnauthenticatedPerSource?: number;
  /** How long a live session has to answer before a new login with its key replaces it. */
  duplicateProbeMs?: number;
  /** Other bounds of each session's channel broker (tests). */
  brokerLimits?: Partial<BrokerLimits>;
  /**
   * Grant zstd to tunnels that ask for it. Default: when this Node has zstd (22.15 and later); false
   * answers as a server on an older Node does (tests). True on a Node without zstd is an error.
   */
  zstd?: boolean;
  /** Serve Prometheus text (/metrics), /healthz and /readyz on this address. */
  metrics?: { host: string; port: number };
  /**
   * Open the admin socket `mtt status` reads (a Unix socket, mode 0600; see admin-socket.ts) at
   * `path`. With `optional`, a socket that cannot be opened (another server answers on it, an unsafe
   * folder) is logged as a warning and the server runs without one; otherwise the start fails.
   */
  adminSocket?: { path: string; optional?: boolean };
  log?: Logger;
  /**
   * How refusals are rate-limited (refused connections, logins, visitors and data channels: lines a
   * peer can repeat at will). Per message, the first `burst` lines of an interval are written, then
   * one summary line with the count (`repeated`). Default: 5 per 10 s.
   */
  logRateLimit?: Pick<RateLimitOptions, 'intervalMs' | 'burst'>;
  signal?: AbortSignal;
}

/** A running server. */
export interface MttServer {
  /** The control listener's address. */
  readonly address: AddressInfo;
  readonly fingerprint: string;
  readonly publicKeyLine: string;
  readonly metrics: Metrics;
  readonly metricsAddress: AddressInfo | undefined;
  /** The admin socket's path, when one is open. */
  readonly adminSocketPath: string | undefined;
  /** What `mtt status` would show now. */
  status(): ServerStatus;
  readonly sessions: ControlSessionManager;
  /** Reads the allow-list file again (it is also watched). */
  reloadAllowList(): Promise<void>;
  close(): Promise<void>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '', '[::]']);

/** Starts a server; resolves once it listens. */
export async function startServer(opts: ServerOptions): Promise<MttServer> {
  const log = opts.log ?? silentLogger;
  const metrics = new Metrics();
  // Lines a visitor or a stranger can cause at will (every refusal path) go through one limiter
  // (src/util/log-rate-limiter.ts): a flood of any of them is a summary line per interval.
  const refusalLog = rateLimitedLogger(log, opts.logRateLimit ?? {});
  const bindHost = opts.publicHost ?? '0.0.0.0';
  if (opts.zstd === true && !zstdAvailable()) {
    throw new Error(`zstd needs Node.js 22.15 or later (this is ${process.version})`);
  }
  const zstd = opts.zstd ?? zstdAvailable();
  const sessions = new ControlSessionManager(
    {
      log,
      refusalLog,
      metrics,
      heartbeatMs: opts.heartbeatMs ?? HEARTBEAT_INTERVAL_MS,
      bindHost,
      displayHost: WILDCARDS.has(bindHost) ? '' : bindHost.includes(':') ? `[${bindHost}]` : bindHost,
      serverRanges: opts.allowPorts ?? DEFAULT_ALLOW_PORTS,
      zstd,
      brokerLimits: {
        ...(opts.pairingTimeoutMs !== undefined ? { channelWaitMs: opts.pairingTimeoutMs } : {}),
        ...(opts.maxPendingPairings !== undefined ? { maxWaiting: opts.maxPendingPairings } : {}),
        ...opts.brokerLimits,
      },
    },
    opts.duplicateProbeMs !== undefined ? { duplicateProbeMs: opts.duplicateProbeMs } : {},
  );

  const fixed: readonly AllowListEntry[] = opts.allowList ?? [];
  const watch = opts.allowedKeysPath
    ? new AllowListWatch({
        path: opts.allowedKeysPath,
        log,
        onChange: (entries) => sessions.allowListChanged(entries),
      })
    : undefined;
  await watch?.start();

  const acceptor = new Acceptor({
    log,
    refusalLog,
    metrics,
    ...(opts.maxUnauthenticated !== undefined ? { maxUnauthenticated: opts.maxUnauthenticated } : {}),
    ...(opts.maxUnauthenticatedPerSource !== undefined
      ? { maxPerSource: opts.maxUnauthenticatedPerSource }
      : {}),
    // The live client's data channels come in bursts from its own address: its session's own bound
    // (MAX_UNPROVEN_DATA_CHANNELS, proof deadline) holds them, not the cap for strangers.
    extraPerSource: (source) => {
      const current = sessions.current;
      return current && !current.closed && current.clientSource === source ? MAX_UNPROVEN_DATA_CHANNELS : 0;
    },
    ...(opts.firstFrameTimeoutMs !== undefined ? { firstFrameTimeoutMs: opts.firstFrameTimeoutMs } : {}),
    ...(opts.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: opts.handshakeTimeoutMs } : {}),
    ...(opts.partialFrameTimeoutMs !== undefined
      ? { partialFrameTimeoutMs: opts.partialFrameTimeoutMs }
      : {}),
    dispatch: (first, hs) =>
      dispatch(
        {
          identity: opts.identity,
          sessions,
          metrics,
          refusalLog,
          allowList: () => watch?.entries ?? fixed,
        },
        first,
        hs,
      ),
  });

  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    acceptor.accept(socket);
  });
  server.listen({ host: opts.host ?? '0.0.0.0', port: opts.port });
  try {
    await once(server, 'listening');
  } catch (err) {
    watch?.close();
    refusalLog.close();
    throw err;
  }
  server.on('error', (err) => log.error('control listener error', { error: err }));
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  metrics.channels = () => sessions.current?.broker.stats();
  // Ready: the control port takes logins and at least one key may log in (see the README, "Metrics").
  metrics.readiness = () => {
    const keys = (watch?.entries ?? fixed).length;
    const listening = server.listening && closing === undefined;
    return {
      ready: listening && keys > 0,
      checks: {
        listening,
        allowList: {
          source: watch ? watch.path : 'inline',
          keys,
          ...(watch?.lastError ? { error: watch.lastError, failingClosed: true } : {}),
        },
        clientConnected: metrics.clientConnected === 1,
      },
    };
  };
  let metricsServer: MetricsListener | undefined;
  if (opts.metrics) {
    try {
      metricsServer = await serveMetricsHttp(
        { metrics: () => metrics.prometheus(), ready: () => metrics.readiness() },
        opts.metrics.host,
        opts.metrics.port,
      );
    } catch (err) {
      server.close();
      watch?.close();
      refusalLog.close();
      throw err;
    }
  }
  const metricsAddress = metricsServer?.address;
  const fp = fingerprint(opts.identity.publicRaw);
  const statusSource = new StatusSource({
    metrics,
    sessions,
    control:
      address.family === 'IPv6'
        ? `[${address.address}]:${address.port}`
        : `${address.address}:${address.port}`,
    fingerprint: fp,
    allowedKeys: () => (watch?.entries ?? fixed).length,
  });
  let admin: AdminSocket | undefined;
  if (opts.adminSocket) {
    try {
      admin = await openAdminSocket({
        path: opts.adminSocket.path,
        status: () => statusSource.snapshot(),
        log,
      });
      statusSource.start();
    } catch (err) {
      if (!opts.adminSocket.optional) {
        server.close();
        watch?.close();
        refusalLog.close();
        await metricsServer?.close();
        throw err;
      }
      log.warn('running without an admin socket: mtt status cannot reach this server', {
        reason: (err as Error).message,
      });
    }
  }
  log.info('server listening', {
    control: `${address.address}:${address.port}`,
    fingerprint: fp,
    tunnels: bindHost,
    ...(admin ? { adminSocket: admin.path } : {}),
  });

  const close = () => {
    closing ??= (async () => {
      watch?.close();
      sessions.closeAll();
      const done = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      statusSource.close();
      await Promise.all([done, metricsServer?.close(), admin?.close()]);
      // Counts held back so far are written now, not lost with the process.
      refusalLog.close();
    })();
    return closing;
  };
  opts.signal?.addEventListener('abort', () => void close(), { once: true });

  return {
    address,
    fingerprint: fp,
    publicKeyLine: formatPublicKeyLine(opts.identity.publicRaw, opts.identity.comment),
    metrics,
    metricsAddress,
    adminSocketPath: admin?.path,
    status: () => statusSource.snapshot(),
    sessions,
    reloadAllowList: async () => {
      await watch?.reload();
    },
    close,
  };
}
