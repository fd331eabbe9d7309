// The container's health check. With a metrics listener in the server config ("metrics":
// "ADDR:PORT"), the server is healthy when GET /healthz answers 200: that needs the server's event
// loop to answer, where a TCP connect to the control port succeeds even when the process is wedged
// (the kernel completes the handshake from the listen backlog). Without one, it falls back to that
// TCP connect. Settings come from MTT_CONFIG_FILE (default /etc/mtt/server.json); a wildcard
// address is checked on loopback.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';

const WILDCARD = ['0.0.0.0', '::', '[::]', ''];
const local = (h) => (WILDCARD.includes(h) ? '127.0.0.1' : h.replace(/^\[|\]$/g, ''));
let port = 9000;
let host = '127.0.0.1';
let metrics;
try {
  const cfg = JSON.parse(readFileSync(process.env.MTT_CONFIG_FILE ?? '/etc/mtt/server.json', 'utf8'));
  if (Number.isInteger(cfg.port) && cfg.port > 0) port = cfg.port;
  if (typeof cfg.host === 'string') host = local(cfg.host);
  if (typeof cfg.metrics === 'string' && cfg.metrics.lastIndexOf(':') > 0) {
    const i = cfg.metrics.lastIndexOf(':');
    metrics = { host: local(cfg.metrics.slice(0, i)), port: Number(cfg.metrics.slice(i + 1)) };
  }
} catch {
  // No readable config: the defaults.
}
if (metrics) {
  const req = request({ ...metrics, path: '/healthz', timeout: 3000 }, (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
  req.on('timeout', () => process.exit(1));
  req.on('error', () => process.exit(1));
  req.end();
} else {
  const socket = connect({ port, host, timeout: 3000 });
  socket.on('connect', () => {
    socket.destroy();
    process.exit(0);
  });
  socket.on('timeout', () => process.exit(1));
  socket.on('error', () => process.exit(1));
}
