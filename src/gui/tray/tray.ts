/**
 * The tray icon behind one small interface, so each platform plugs in its own: Linux speaks
 * StatusNotifierItem over D-Bus; elsewhere (for now) there is no icon and the dashboard is the UI.
 */
import type { ClientSnapshot } from '../../client/index.js';
import { escapeControls } from '../../util/escape.js';
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
      detail = `Reconnecting to ${addr}: ${escapeControls(c.lastError)}`;
      break;
    case 'rejected':
      status = 'error';
      detail = `Rejected by ${addr}: ${escapeControls(c.message || c.reason)}`;
      break;
    case 'stopped':
      status = 'stopped';
      detail = 'Stopped';
      break;
  }
  const failing = s.tunnels.filter((t) => t.status === 'error').length;
  const localDown = s.tunnels.filter((t) => t.enabled && t.local?.state === 'failing').length;
  // A dead local service is a problem the user must see even while the server side is fine.
  if (status === 'connected' && localDown > 0) status = 'error';
  if (status === 'connected' && s.paused) status = 'stopped';
  const problems = [
    failing > 0 ? `${failing} tunnel${failing > 1 ? 's' : ''} refused` : '',
    localDown > 0 ? `${localDown} local service${localDown > 1 ? 's' : ''} down` : '',
    s.paused ? 'paused' : '',
  ].filter((p) => p !== '');
  const title = `MiniTCPTunnel: ${c.kind}${problems.length > 0 ? `, ${problems.join(', ')}` : ''}`;
  return {
    status,
    title,
    detail,
    tunnels: s.tunnels.map((t) => ({
      name: t.name,
      enabled: t.enabled,
      status: t.status,
      ...(t.local?.state === 'failing' ? { localDown: true } : {}),
    })),
    window,
    canReconnect: c.kind === 'reconnecting' || (c.kind === 'rejected' && c.nextTryAt !== undefined),
    paused: s.paused === true,
    activeConnections: s.tunnels.reduce((n, t) => n + t.activeConnections, 0),
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
  const { sessionBusAddress } = await import('../dbus/connection.js');
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
