/** What the tray tests share: the state they show, and actions that record each click. */
import type { TrayActions, TrayState } from '../../../src/gui/tray/tray.js';

/** Tray actions that record what was clicked: 'show', 'hide', 'web=false', 'quit'. */
export function recordingActions(): { calls: string[]; actions: TrayActions } {
  const calls: string[] = [];
  const actions: TrayActions = {
    showWindow: () => calls.push('show'),
    hideWindow: () => calls.push('hide'),
    setTunnelEnabled: (name, enabled) => calls.push(`${name}=${enabled}`),
    quit: () => calls.push('quit'),
  };
  return { calls, actions };
}

/** Connected, one tunnel on and one off, the window closed. */

export const SAMPLE_TRAY_STATE: Readonly<TrayState> = Object.freeze({
  status: 'connected',
  title: 'MiniTCPTunnel: connected',
  detail: 'Connected to vps.example.net:9000',
  tunnels: Object.freeze([
    Object.freeze({ name: 'web', enabled: true, status: 'active' }),
    Object.freeze({ name: 'db', enabled: false, status: 'disabled' }),
  ]),
  window: 'closed',
}) as TrayState;
