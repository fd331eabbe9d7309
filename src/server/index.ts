/** The server library: start one with startServer(). */

export { Metrics, type TunnelCounters } from './metrics.js';
export { DEFAULT_ALLOW_PORTS, type MttServer, type ServerOptions, startServer } from './server.js';
