/**
 * LocalProxy: the server assigned a visitor to one of our idle data channels (IncomingConn on it,
 * then the visitor's first bytes). Hold those bytes, dial the tunnel's local service, write the
 * PROXY protocol header when the tunnel asks for one, then relay. A
 * service that refuses is reported on that channel (Error target_unreachable), which both ends then
 * close, so the server resets the visitor at once.
 */
import type { IncomingConn } from '../protocol/messages.js';
import { formatHostPort } from '../transport/addresses.js';
import type { ClientConnection } from '../transport/handshake.js';
import { relay } from '../transport/relay.js';
import { dialTcp } from '../transport/sockets.js';
import type { Logger } from '../util/logger.js';
import type { ClientObserver } from './metrics.js';
import { proxyHeader } from './proxy-protocol.js';
import type { StateStore } from './state-store.js';
import type { ManagedTunnel, TunnelManager } from './tunnel-manager.js';

/** How long dialing the local target may take. */
export const LOCAL_DIAL_TIMEOUT_MS = 5_000;
/** Recent connections kept per tunnel for the dashboard. */
export const MAX_RECENT_CONNECTIONS = 20;

/** What a LocalProxy works with. */
export interface LocalProxyOptions {
  tunnels: TunnelManager;
  state: StateStore;
  log: Logger;
  /** The channel's connection ended cleanly: back to the pool (false: the relay ends it). */
  release(conn: ClientConnection): boolean;
  /** The channel is done for good. */
  forget(conn: ClientConnection): void;
  /** Told how long each dial of a local service took (metrics). */
  observer?: Pick<ClientObserver, 'localDial'>;
}

/** Serves the visitors the server assigns to this session's data channels. */
export class LocalProxy {
  readonly #opts: LocalProxyOptions;
  #nextId = 1;

  constructor(opts: LocalProxyOptions) {
    this.#opts = opts;
  }

  /** Handles one IncomingConn on `conn`; never throws. */
  handle(conn: ClientConnection, msg: IncomingConn): void {
    const { tunnels, state, log } = this.#opts;
    const t = tunnels.byId(msg.tunnelId);
    if (!t?.config.enabled) {
      this.#refuse(conn, msg, 'no such tunnel on this client');
      return;
    }
    // Hold the visitor's first bytes until the local service answers.
    conn.pause();
    // zstd only when this open's TunnelStatus granted it; otherwise LZ4 (docs/PROTOCOL.md, section 4).
    conn.encoder.setCompression(t.config.compress ? 'auto' : 'never', t.zstd ? 'zstd' : 'lz4');
    const { name, localHost, localPort } = t.config;
    const peer = formatHostPort(msg.family, msg.srcAddr, msg.srcPort);
    const clog = log.child({ tunnel: name, conn: msg.connId });
    clog.debug('incoming connection', { peer });
    const recent = this.#record(t, peer);
    const started = performance.now();
    const took = () => (performance.now() - started) / 1000;
    dialTcp(localHost, localPort, LOCAL_DIAL_TIMEOUT_MS).then(
      (socket) => {
        this.#opts.observer?.localDial(name, took(), true);
        if (t.runtime.local.state !== 'ok') {
          t.runtime.local = { state: 'ok', since: Date.now() };
          state.changed();
        }
        // The visitor's address, before any byte of the connection (PROXY protocol, per tunnel).
        if (t.config.proxyProtocol) socket.write(proxyHeader(t.config.proxyProtocol, msg));
        t.runtime.activeConnections += 1;
        t.runtime.totalConnections += 1;
        state.countersChanged();
        const started = Date.now();
        relay(conn, socket, {
          onToSocket: (n) => {
            t.runtime.bytesIn += n;
            recent.bytesIn += n;
            state.countersChanged();
          },
          onFromSocket: (n) => {
            t.runtime.bytesOut += n;
            recent.bytesOut += n;
            state.countersChanged();
          },
          onEnd: (end) => {
            t.runtime.activeConnections -= 1;
            recent.open = false;
            recent.durationMs = Date.now() - started;
            if (!end.clean && end.error) recent.error = end.error.message;
            if (!end.clean) this.#opts.forget(conn);
            state.countersChanged();
            clog.debug('connection closed', { clean: end.clean, error: end.error });
          },
          // After FIN both ways the channel is idle again on both sides.
          reuse: () => this.#opts.release(conn),
        });
      },
      (err: NodeJS.ErrnoException) => {
        this.#opts.observer?.localDial(name, took(), false);
        const code = err.code ?? err.message;
        t.runtime.failedDials += 1;
        recent.open = false;
        recent.durationMs = 0;
        recent.error = `local service refused: ${code}`;
        if (t.runtime.local.state !== 'failing') {
          t.runtime.local = { state: 'failing', lastError: code, since: Date.now() };
        } else {
          t.runtime.local.lastError = code;
        }
        state.changed();
        clog.warn('local target refused the connection', {
          target: `${localHost}:${localPort}`,
          error: code,
        });
        state.event('warn', `${localHost}:${localPort} refused a connection (${code})`, name);
        this.#refuse(conn, msg, `local target ${localHost}:${localPort}: ${code}`);
      },
    );
  }

  /** Tells the server on this channel that the visitor cannot be served; both ends close it. */
  #refuse(conn: ClientConnection, msg: IncomingConn, message: string): void {
    if (!conn.closed) conn.send({ type: 'Error', streamId: msg.connId, code: 'target_unreachable', message });
    conn.end();
    this.#opts.forget(conn);
  }

  #record(t: ManagedTunnel, peer: string) {
    const entry = {
      id: this.#nextId++,
      at: Date.now(),
      peer,
      open: true,
      bytesIn: 0,
      bytesOut: 0,
    } as ManagedTunnel['runtime']['recent'][number];
    const list = t.runtime.recent;
    list.push(entry);
    if (list.length > MAX_RECENT_CONNECTIONS) list.splice(0, list.length - MAX_RECENT_CONNECTIONS);
    return entry;
  }
}
