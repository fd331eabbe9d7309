/** The desktop GUI: dashboard server, app window and tray. `mtt gui` is guiCommand(). */
export { AppWindow, type AppWindowOptions, findAppBrowser, windowProfileDir } from './app-window.js';
export { type GuiCommandOptions, guiCommand } from './command.js';
export { type Dashboard, type DashboardOptions, startDashboard } from './dashboard/index.js';
export type { ApiError, DashboardUpdate, TunnelRates } from './dashboard-types.js';
export {
  type CreateTrayOptions,
  createTray,
  NoTray,
  type Tray,
  type TrayActions,
  type TrayState,
  type TrayTunnel,
  trayStateFromSnapshot,
} from './tray/tray.js';
export type { WindowState } from './window-state.js';
