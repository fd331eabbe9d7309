/**
 * Server metrics: per-tunnel connection and byte counters, kept across client sessions (keyed by the
 * public port) so counters only ever grow, and served as Prometheus text on request.
 */

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

/** Counters of one public port. */
export interface TunnelCounters {
  name: string;
  port: number;
  activeConnections: number;
  totalConnections: number;
  /** Bytes from external peers towards the client's local service. */
  bytesIn: number;
  /** Bytes from the local service back to external peers. */
  bytesOut: number;
  /** External connections closed because no data channel came in time (or the cap was hit). */
  pairingFailures: number;
}

/** All of the server's counters. */
export class Metrics {
  readonly tunnels = new Map<number, TunnelCounters>();
  readonly authFailures = new Map<string, number>();
  sessionsTotal = 0;
  clientConnected = 0;

  /** The counters for a public port, created on first use. */
  tunnel(port: number, name: string): TunnelCounters {
    let t = this.tunnels.get(port);
    if (!t) {
      t = {
        name,
        port,
        activeConnections: 0,
        totalConnections: 0,
        bytesIn: 0,
        bytesOut: 0,
        pairingFailures: 0,
      };
      this.tunnels.set(port, t);
    }
    t.name = name;
    return t;
  }

  authFailed(reason: string): void {
    this.authFailures.set(reason, (this.authFailures.get(reason) ?? 0) + 1);
  }

  /** Prometheus text exposition format, version 0.0.4. */
  prometheus(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, rows: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}${labels} ${v}`);
    };
    const tunnels = [...this.tunnels.values()];
    const lbl = (t: TunnelCounters, extra = '') =>
      `{tunnel="${escapeLabel(t.name)}",port="${t.port}"${extra}}`;
    family('mtt_client_connected', 'gauge', 'Whether a client session is established (0 or 1).', [
      ['', this.clientConnected],
    ]);
    family('mtt_sessions_total', 'counter', 'Client sessions established.', [['', this.sessionsTotal]]);
    family(
      'mtt_auth_failures_total',
      'counter',
      'Refused client handshakes, by reason.',
      [...this.authFailures].map(([r, n]) => [`{reason="${escapeLabel(r)}"}`, n]),
    );
    family(
      'mtt_tunnel_connections_active',
      'gauge',
      'Tunneled connections open now.',
      tunnels.map((t) => [lbl(t), t.activeConnections]),
    );
    family(
      'mtt_tunnel_connections_total',
      'counter',
      'Tunneled connections accepted.',
      tunnels.map((t) => [lbl(t), t.totalConnections]),
    );
    family('mtt_tunnel_bytes_total', 'counter', 'Bytes carried, by direction (in: towards the client).', [
      ...tunnels.map((t): [string, number] => [lbl(t, ',direction="in"'), t.bytesIn]),
      ...tunnels.map((t): [string, number] => [lbl(t, ',direction="out"'), t.bytesOut]),
    ]);
    family(
      'mtt_tunnel_pairing_failures_total',
      'counter',
      'External connections closed before a data channel arrived.',
      tunnels.map((t) => [lbl(t), t.pairingFailures]),
    );
    return out.join('\n') + '\n';
  }
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Serves GET /metrics; resolves once listening. */
export async function serveMetrics(metrics: Metrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(metrics.prometheus());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found; try /metrics\n');
    }
  });
  server.listen({ host, port });
  await once(server, 'listening');
  return server;
}
