/**
 * Prometheus exposition for the server and the client, on prom-client (the Node ecosystem's standard
 * client). prom-client is loaded on first use, so a process that serves no metrics never pays for it
 * (about 12 MB of RSS and a few hundred ms of start-up on our machines, measured in the README). The
 * process and runtime metrics (`process_*`, `nodejs_*`) live in one registry per process, since they
 * describe the process whichever server or client asks.
 *
 * serveMetricsHttp() is the metrics listener both sides share: GET /metrics, /healthz (the process
 * answers) and /readyz (the owner's own readiness checks, 200 or 503 with the checks as JSON).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The prom-client module. */
export type PromClient = typeof import('prom-client');
/** A prom-client registry. */
export type PromRegistry = import('prom-client').Registry;

/** prom-client defaults that `promtool check metrics` rejects ("non-counter metrics should not have _total"). */
const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

let loading: Promise<PromClient> | undefined;
let processRegistry: Promise<PromRegistry> | undefined;

/** prom-client, loaded once. */
export function loadPromClient(): Promise<PromClient> {
  loading ??= import('prom-client').then((m) => ((m as { default?: PromClient }).default ?? m) as PromClient);
  return loading;
}

/** The registry of the process and runtime metrics (prom-client's default metrics), made once. */
export function processMetrics(): Promise<PromRegistry> {
  processRegistry ??= loadPromClient().then((pc) => {
    const register = new pc.Registry();
    pc.collectDefaultMetrics({ register });
    // Gauges named like counters (promtool flags them); the same counts by type remain, e.g.
    // nodejs_active_handles{type="Socket"}.
    for (const name of LINT_FAILING_DEFAULTS) register.removeSingleMetric(name);
    return register;
  });
  return processRegistry;
}

/**
 * Registers `mtt_frame_errors_total{reason}`, which the server and the client both expose with the
 * same name, help and labels: at each scrape it is set from `counts` (the process-wide frame-error
 * counts of src/transport/frame-errors.ts, passed in since util imports no other folder).
 */
export function registerFrameErrors(
  pc: PromClient,
  registers: PromRegistry[],
  counts: () => Iterable<readonly [string, number]>,
): void {
  new pc.Counter({
    name: 'mtt_frame_errors_total',
    help: 'Connections closed on a bad frame (size, AEAD, decompression, malformed, truncated), by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of counts()) this.inc({ reason }, n);
    },
  });
}

/** The content type of the Prometheus text format that prom-client writes. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The text of `own` followed by the process metrics. */
export async function exposition(own: PromRegistry): Promise<string> {
  const [a, b] = await Promise.all([own.metrics(), (await processMetrics()).metrics()]);
  return `${a.trimEnd()}\n${b}`;
}

/** One readiness verdict: `ready` and the checks that led to it (served as JSON). */
export interface Readiness {
  ready: boolean;
  checks: Record<string, unknown>;
}

/** What the metrics listener serves. */
export interface MetricsEndpoint {
  /** The Prometheus text. */
  metrics(): Promise<string>;
  /** Whether the owner can do its job now (GET /readyz). */
  ready(): Readiness;
}

/** A running metrics listener. */
export interface MetricsListener {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * Serves GET (and HEAD) /metrics, /healthz and /readyz on host:port; resolves once listening.
 * /healthz answers 200 whenever the event loop does (liveness); /readyz answers 200 or 503.
 */
export async function serveMetricsHttp(
  endpoint: MetricsEndpoint,
  host: string,
  port: number,
): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('only GET and HEAD\n');
      return;
    }
    if (path === '/metrics') {
      endpoint.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
          res.end(head ? undefined : text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${err.message}\n`);
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(head ? undefined : 'ok\n');
    } else if (path === '/readyz') {
      const r = endpoint.ready();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' });
      res.end(head ? undefined : `${JSON.stringify(r)}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found; try /metrics, /healthz or /readyz\n');
    }
  });
  server.listen({ host, port });
  await once(server, 'listening');
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
