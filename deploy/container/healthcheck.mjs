// The container's health check: the server is healthy when its control port accepts a TCP
// connection. The port and address come from the server config (MTT_CONFIG_FILE, default
// /etc/mtt/server.json; 9000 and loopback when the file does not say). A /healthz endpoint comes
// with the metrics listener; until then this is the real liveness signal a client depends on.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

let port = 9000;
let host = '127.0.0.1';
try {
  const cfg = JSON.parse(readFileSync(process.env.MTT_CONFIG_FILE ?? '/etc/mtt/server.json', 'utf8'));
  if (Number.isInteger(cfg.port) && cfg.port > 0) port = cfg.port;
  if (typeof cfg.host === 'string' && !['0.0.0.0', '::', '[::]', ''].includes(cfg.host))
    host = cfg.host.replace(/^\[|\]$/g, '');
} catch {
  // No readable config: the defaults.
}
const socket = connect({ port, host, timeout: 3000 });
socket.on('connect', () => {
  socket.destroy();
  process.exit(0);
});
socket.on('timeout', () => process.exit(1));
socket.on('error', () => process.exit(1));
