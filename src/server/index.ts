/** The server library: start one with startServer(). */

export {
  type ServerStatus,
  STATUS_FORMAT,
  type StatusRefusal,
  type StatusSession,
  type StatusTunnel,
} from './admin-status.js';
export { Metrics, type TunnelCounters } from './metrics.js';
export { DEFAULT_ALLOW_PORTS, type MttServer, type ServerOptions, startServer } from './server.js';
