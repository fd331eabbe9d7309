/** The tray state the tray tests show: connected, one tunnel on and one off, the window closed. */
import type { TrayState } from '../../../src/gui/tray/tray.js';

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
