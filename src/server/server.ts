/**
 * The server: a control listener that runs a handshake on every connection (with a timeout and a cap
 * on connections still in their handshake), then hands control channels to the session manager and
 * data channels to the pairer. Start it with startServer(); stop it with close() or an AbortSignal.
 */

import { once } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import {
  type AllowListEntry,
  fingerprint,
  formatPublicKeyLine,
  type Identity,
  loadAllowList,
  type PortRange,
} from '../identity/index.js';
import { isProtocolError, ProtocolError } from '../protocol/errors.js';
import {
  HANDSHAKE_TIMEOUT_MS,
  HEARTBEAT_INTERVAL_MS,
  MAX_UNAUTHENTICATED_CONNECTIONS,
} from '../protocol/limits.js';
import {
  type ClientHello,
  type DataHello,
  decodeClientMessage,
  type ServerMessage,
} from '../protocol/messages.js';
import { FramedConnection } from '../transport/framed-connection.js';
import {
  failAndClose,
  runDataServerHandshake,
  runServerHandshake,
  type ServerConnection,
} from '../transport/handshake.js';
import { type Logger, silentLogger } from '../util/logger.js';
import { ConnectionPairer } from './connection-pairer.js';
import { ControlSessionManager } from './control-session-manager.js';
import { Metrics, serveMetrics } from './metrics.js';

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
  handshakeTimeoutMs?: number;
  pairingTimeoutMs?: number;
  maxPendingPairings?: number;
  maxUnauthenticated?: number;
  /** Serve Prometheus text on this address. */
  metrics?: { host: string; port: number };
  log?: Logger;
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
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const maxUnauth = opts.maxUnauthenticated ?? MAX_UNAUTHENTICATED_CONNECTIONS;
  const bindHost = opts.publicHost ?? '0.0.0.0';
  const pairer = new ConnectionPairer({
    log,
    ...(opts.pairingTimeoutMs !== undefined ? { timeoutMs: opts.pairingTimeoutMs } : {}),
    ...(opts.maxPendingPairings !== undefined ? { maxPending: opts.maxPendingPairings } : {}),
  });
  const sessions = new ControlSessionManager({
    log,
    metrics,
    pairer,
    heartbeatMs: opts.heartbeatMs ?? HEARTBEAT_INTERVAL_MS,
    bindHost,
    displayHost: WILDCARDS.has(bindHost) ? '' : bindHost.includes(':') ? `[${bindHost}]` : bindHost,
    serverRanges: opts.allowPorts ?? DEFAULT_ALLOW_PORTS,
  });

  let allowList: readonly AllowListEntry[] = opts.allowList ?? [];
  const reloadAllowList = async () => {
    if (!opts.allowedKeysPath) return;
    try {
      const loaded = await loadAllowList(opts.allowedKeysPath);
      allowList = loaded.entries;
      log.info('allow-list loaded', { path: opts.allowedKeysPath, keys: allowList.length });
      sessions.allowListChanged(allowList);
    } catch (err) {
      // A broken edit must not lock everyone out or let anyone in: keep the last good list.
      log.error('allow-list not reloaded; keeping the previous one', { error: err as Error });
    }
  };
  if (opts.allowedKeysPath) {
    const loaded = await loadAllowList(opts.allowedKeysPath);
    allowList = loaded.entries;
    if (!loaded.exists) {
      log.warn('allow-list file does not exist yet; no client can connect until a key is added', {
        path: opts.allowedKeysPath,
        fix: `mtt allow CLIENT_KEY.pub --allowed-keys ${opts.allowedKeysPath}`,
      });
    }
  }
  let watcher: FSWatcher | undefined;
  if (opts.allowedKeysPath) {
    const file = basename(opts.allowedKeysPath);
    let debounce: NodeJS.Timeout | undefined;
    // Watch the folder: an atomic rename replaces the file's inode, which a file watch would miss.
    watcher = watch(dirname(opts.allowedKeysPath), { persistent: false }, (_event, name) => {
      if (name !== null && name !== file) return;
      if (debounce) clearTimeout(debounce);
      debounce = setTimeout(() => void reloadAllowList(), 50);
    });
    watcher.on('error', (err) =>
      log.warn('cannot watch the allow-list; restart to apply changes', { error: err }),
    );
  }

  let unauthenticated = 0;
  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (unauthenticated >= maxUnauth) {
      log.warn('connection refused: too many handshakes in progress', {
        peer: socket.remoteAddress,
        max: maxUnauth,
      });
      socket.destroy();
      return;
    }
    unauthenticated += 1;
    let counted = true;
    const release = () => {
      if (counted) {
        counted = false;
        unauthenticated -= 1;
      }
    };
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const conn: ServerConnection = new FramedConnection(socket, decodeClientMessage);
    conn.onClose(release);
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      if (counted) {
        log.debug('handshake timed out', { peer });
        conn.close(new ProtocolError('ERR_HANDSHAKE_TIMEOUT', 'handshake timed out'));
      }
    }, handshakeTimeoutMs);
    const deadline = Date.now() + handshakeTimeoutMs;
    const done = () => {
      clearTimeout(timer);
      release();
    };
    void (async () => {
      let first: Awaited<ReturnType<ServerConnection['receive']>>;
      try {
        first = await conn.receive(handshakeTimeoutMs);
      } catch (err) {
        done();
        if (isProtocolError(err) && err.code === 'ERR_VERSION_MISMATCH') {
          log.warn('client on another protocol version refused', { peer, error: err });
          metrics.authFailed('version_mismatch');
          failAndClose(conn, 'version_mismatch', err.message);
        } else {
          log.debug('connection dropped before its hello', { peer, error: err as Error });
          conn.close();
        }
        return;
      }
      try {
        if (first.type === 'ClientHello') await handleControl(conn, first, deadline - Date.now(), done, peer);
        else if (first.type === 'DataHello') await handleData(conn, first, deadline - Date.now(), done);
        else
          throw new ProtocolError(
            'ERR_UNEXPECTED_MESSAGE',
            `a connection must start with a hello, not ${first.type}`,
          );
      } catch (err) {
        done();
        log.debug('connection closed', { peer, error: err as Error });
        conn.close();
      }
    })();
  };

  const handleControl = async (
    conn: ServerConnection,
    hello: ClientHello,
    timeLeft: number,
    done: () => void,
    peer: string,
  ) => {
    let pending: Awaited<ReturnType<typeof runServerHandshake>>;
    try {
      pending = await runServerHandshake(conn, hello, {
        identity: opts.identity,
        timeoutMs: Math.max(1, timeLeft),
      });
    } catch (err) {
      if (isProtocolError(err) && err.code === 'ERR_BAD_SIGNATURE') metrics.authFailed('bad_signature');
      throw err;
    }
    done();
    const entry = allowList.find((e) => e.publicRaw.equals(pending.clientKey));
    if (!entry) {
      const fp = fingerprint(pending.clientKey);
      metrics.authFailed('unknown_key');
      log.warn('client refused: key not in the allow-list', { peer, client: fp });
      pending.reject(
        'unknown_key',
        `key ${fp} is not in this server's allow-list; ask the admin to run: mtt allow KEY.pub`,
      );
      return;
    }
    sessions.admit(pending, conn, entry);
  };

  const handleData = async (conn: ServerConnection, hello: DataHello, timeLeft: number, done: () => void) => {
    const session = sessions.bySessionId(hello.sessionId);
    if (!session) {
      done();
      failAndClose(conn, 'unknown_session', 'no such session (the client reconnected or was replaced)');
      return;
    }
    // A DataHello naming the live session leaves the server-wide handshake cap (a burst of new
    // connections opens many data channels at once); the session's own cap bounds it instead.
    done();
    if (!session.reserveProof()) {
      conn.close();
      return;
    }
    let claim: Awaited<ReturnType<ServerConnection['receive']>>;
    try {
      runDataServerHandshake(conn, hello, session.sessionSecret);
      // The first keyed frame is the proof: it decrypts only if the client holds the session secret.
      claim = await conn.receive(Math.max(1, timeLeft));
    } finally {
      session.releaseProof();
    }
    if (claim.type === 'Heartbeat') {
      // A pooled channel: it waits, proven, for the client to claim a connection with it.
      if (session.addIdle(conn)) pairer.serveIdle(session, conn);
      else conn.close();
      return;
    }
    if (claim.type !== 'DataConnReady') {
      throw new ProtocolError(
        'ERR_UNEXPECTED_MESSAGE',
        `a data channel must claim a connection, not send ${claim.type}`,
      );
    }
    if (!sessions.bySessionId(session.sessionId) || !pairer.pair(session, claim.connId, conn)) {
      const msg: ServerMessage = {
        type: 'Error',
        streamId: claim.connId,
        code: 'not_found',
        message: 'no such connection',
      };
      conn.send(msg);
      conn.stream.end();
      setTimeout(() => conn.close(), 1000).unref();
    }
  };

  const server: Server = createServer({ allowHalfOpen: true }, onConnection);
  server.listen({ host: opts.host ?? '0.0.0.0', port: opts.port });
  try {
    await once(server, 'listening');
  } catch (err) {
    watcher?.close();
    throw err;
  }
  server.on('error', (err) => log.error('control listener error', { error: err }));
  const address = server.address() as AddressInfo;
  let metricsServer: Server | undefined;
  let metricsAddress: AddressInfo | undefined;
  if (opts.metrics) {
    try {
      const http = await serveMetrics(metrics, opts.metrics.host, opts.metrics.port);
      metricsServer = http as unknown as Server;
      metricsAddress = http.address() as AddressInfo;
    } catch (err) {
      server.close();
      watcher?.close();
      throw err;
    }
  }
  const fp = fingerprint(opts.identity.publicRaw);
  log.info('server listening', {
    control: `${address.address}:${address.port}`,
    fingerprint: fp,
    tunnels: bindHost,
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      watcher?.close();
      sessions.closeAll();
      const done = new Promise<void>((r) => server.close(() => r()));
      // Data channels outlive sessions by design; a shutdown ends them (and so their connections).
      for (const s of sockets) s.destroy();
      metricsServer?.close();
      await done;
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
    sessions,
    reloadAllowList,
    close,
  };
}
