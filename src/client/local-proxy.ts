/**
 * LocalProxy: for each IncomingConn, dials the tunnel's local target and takes a data channel (both at
 * once), then claims the connection (DataConnReady) and relays. A target that refuses is reported on
 * the control channel, so the server closes the external connection at once.
 */
import type { IncomingConn } from '../protocol/messages.js';
import { type DataChannel, relay } from '../transport/relay.js';
import type { Logger } from '../util/logger.js';
import { type DataChannelFactory, dialTcp } from './data-channels.js';
import type { StateStore } from './state-store.js';
import type { TunnelManager } from './tunnel-manager.js';

/** How long dialing the local target may take. */
export const LOCAL_DIAL_TIMEOUT_MS = 5_000;

/** What a LocalProxy works with. */
export interface LocalProxyOptions {
  tunnels: TunnelManager;
  channels: DataChannelFactory;
  state: StateStore;
  log: Logger;
  /** Tells the server that conn_id cannot be served. */
  reportFailure(connId: number, message: string): void;
}

/** Serves IncomingConn messages of one session. */
export class LocalProxy {
  readonly #opts: LocalProxyOptions;

  constructor(opts: LocalProxyOptions) {
    this.#opts = opts;
  }

  /** Handles one IncomingConn; never throws. */
  handle(msg: IncomingConn): void {
    const { tunnels, channels, state, log, reportFailure } = this.#opts;
    const t = tunnels.byId(msg.tunnelId);
    if (!t?.config.enabled) {
      reportFailure(msg.connId, 'no such tunnel on this client');
      return;
    }
    const { name, localHost, localPort } = t.config;
    const clog = log.child({ tunnel: name, conn: msg.connId });
    clog.debug('incoming connection', { peer: msg.peer });
    const local = dialTcp(localHost, localPort, LOCAL_DIAL_TIMEOUT_MS);
    const channel = channels.take();
    void Promise.allSettled([local, channel]).then(([l, c]) => {
      if (l.status === 'rejected') {
        const code = (l.reason as NodeJS.ErrnoException).code ?? (l.reason as Error).message;
        t.runtime.failedDials += 1;
        state.countersChanged();
        clog.warn('local target refused the connection', {
          target: `${localHost}:${localPort}`,
          error: code,
        });
        state.event('warn', `${localHost}:${localPort} refused a connection (${code})`, name);
        reportFailure(msg.connId, `local target ${localHost}:${localPort}: ${code}`);
        if (c.status === 'fulfilled') c.value.close();
        return;
      }
      if (c.status === 'rejected') {
        clog.warn('could not open a data channel', { error: c.reason as Error });
        l.value.destroy();
        reportFailure(msg.connId, 'client could not open a data channel');
        return;
      }
      const socket = l.value;
      const conn = c.value;
      conn.send({ type: 'DataConnReady', connId: msg.connId });
      t.runtime.activeConnections += 1;
      t.runtime.totalConnections += 1;
      state.countersChanged();
      relay(conn as unknown as DataChannel, socket, {
        onToSocket: (n) => {
          t.runtime.bytesIn += n;
          state.countersChanged();
        },
        onFromSocket: (n) => {
          t.runtime.bytesOut += n;
          state.countersChanged();
        },
        onEnd: (end) => {
          t.runtime.activeConnections -= 1;
          state.countersChanged();
          clog.debug('connection closed', { clean: end.clean, error: end.error });
        },
        // A channel that ended cleanly goes back to the pool for the next connection.
        reuse: () => channels.release(conn),
      });
    });
  }
}
