/**
 * The tray icon behind one small interface, so each platform plugs in its own: Linux speaks
 * StatusNotifierItem over D-Bus; elsewhere (for now) there is no icon and the dashboard is the UI.
 */
import type { ClientSnapshot } from '../../client/api.js';
import type { Logger } from '../../util/logger.js';
import type { WindowState } from '../window-state.js';
import type { IconStatus } from './icons.js';
import type { Tray, TrayActions, TrayState } from './types.js';

export type { Tray, TrayActions, TrayState, TrayTunnel } from './types.js';

/** Options for {@link createTray}. */
export interface CreateTrayOptions {
  log: Logger;
  /** D-Bus address; defaults to the session bus. */
  busAddress?: string;
  platform?: NodeJS.Platform;
}

/** Maps the client's snapshot to what the tray shows. */
export function trayStateFromSnapshot(s: ClientSnapshot, window: WindowState): TrayState {
  const c = s.connection;
  const addr = s.server.address;
  let status: IconStatus;
  let detail: string;
  switch (c.kind) {
    case 'connected':
      status = s.tunnels.some((t) => t.status === 'error') ? 'error' : 'connected';
      detail = `Connected to ${addr}`;
      break;
    case 'connecting':
      status = 'connecting';
      detail = `Connecting to ${addr}…`;
      break;
    case 'reconnecting':
      status = 'reconnecting';
      detail = `Reconnecting to ${addr}: ${c.lastError}`;
      break;
    case 'rejected':
      status = 'error';
      detail = `Rejected by ${addr}: ${c.message || c.reason}`;
      break;
    case 'stopped':
      status = 'stopped';
      detail = 'Stopped';
      break;
  }
  const failing = s.tunnels.filter((t) => t.status === 'error').length;
  const title = `MiniTCPTunnel: ${c.kind}${failing > 0 ? `, ${failing} tunnel${failing > 1 ? 's' : ''} failing` : ''}`;
  return {
    status,
    title,
    detail,
    tunnels: s.tunnels.map((t) => ({ name: t.name, enabled: t.enabled, status: t.status })),
    window,
  };
}

/** A tray that shows nothing, for platforms or sessions without a tray host. */
export class NoTray implements Tray {
  readonly kind = 'none';
  update(): void {}
  async close(): Promise<void> {}
}

/**
 * Picks the tray for this platform. Never throws: where no tray can be shown it logs why, once, and
 * returns a NoTray so the client and dashboard keep working.
 */
export async function createTray(actions: TrayActions, opts: CreateTrayOptions): Promise<Tray> {
  const platform = opts.platform ?? process.platform;
  if (platform !== 'linux' && platform !== 'freebsd' && platform !== 'openbsd') {
    opts.log.info('no tray icon on this platform yet; use the dashboard window', { platform });
    return new NoTray();
  }
  const { sessionBusAddress } = await import('./dbus/connection.js');
  const address = opts.busAddress ?? sessionBusAddress();
  if (!address) {
    opts.log.warn('no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set); running without a tray icon');
    return new NoTray();
  }
  try {
    const { StatusNotifierTray } = await import('./status-notifier.js');
    return await StatusNotifierTray.start(actions, { address, log: opts.log });
  } catch (err) {
    opts.log.warn('cannot reach the D-Bus session bus; running without a tray icon', { error: err as Error });
    return new NoTray();
  }
}
