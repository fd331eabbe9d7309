/**
 * The client's Prometheus metrics (`mtt client --metrics ADDR:PORT`, or `metrics` in the config):
 * per tunnel its connections, bytes and failed local dials (read from the tunnels' live counters when
 * Prometheus scrapes), the reconnects of the control channel, and latency histograms of the control
 * handshake, of setting up a data channel and of dialing the local service. prom-client is loaded only
 * when metrics are asked for. Names and labels are stable: the README lists them.
 */
import type { AddressInfo } from 'node:net';
import { splitHostPort } from '../config/host-port.js';
import { frameErrorCounts } from '../transport/frame-errors.js';
import {
  exposition,
  loadPromClient,
  type MetricsEndpoint,
  type PromRegistry,
  registerFrameErrors,
  serveMetricsHttp,
} from '../util/prometheus.js';
import type { StateStoreLike, TunnelView } from './api.js';

/** Timings and events the running client reports (all optional to call; cheap). */
export interface ClientObserver {
  /** A control-channel handshake finished (TCP connected to AuthOk or AuthFail), in seconds. */
  handshake(seconds: number, ok: boolean): void;
  /** The client is trying to connect again (after a session ended or an attempt failed). */
  reconnect(): void;
  /** A data channel was opened and keyed (dial, DataHello, DataHelloAck), in seconds. */
  channelSetup(seconds: number): void;
  /** The local service of `tunnel` answered a dial (or refused it), in seconds. */
  localDial(tunnel: string, seconds: number, ok: boolean): void;
}

/** Latency buckets, in seconds: 1 ms to 10 s. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The client's metrics registry and the observer that feeds it. */
export class ClientMetrics {
  readonly observer: ClientObserver;
  readonly #registry: PromRegistry;
  readonly #box: { state?: StateStoreLike };

  private constructor(registry: PromRegistry, observer: ClientObserver, box: { state?: StateStoreLike }) {
    this.#registry = registry;
    this.observer = observer;
    this.#box = box;
  }

  /** Loads prom-client and builds the registry. */
  static async create(): Promise<ClientMetrics> {
    const pc = await loadPromClient();
    const registers = [new pc.Registry()];
    const box: { state?: StateStoreLike } = {};
    const tunnels = (): TunnelView[] => box.state?.snapshot().tunnels ?? [];
    const reconnects = new pc.Counter({
      name: 'mtt_client_reconnects_total',
      help: 'Connection attempts after a session ended or an attempt failed.',
      registers,
    });
    const handshake = new pc.Histogram({
      name: 'mtt_client_handshake_seconds',
      help: 'Control-channel handshakes, from TCP connected to the server answering, by result.',
      labelNames: ['result'],
      buckets: BUCKETS,
      registers,
    });
    const setup = new pc.Histogram({
      name: 'mtt_client_data_channel_setup_seconds',
      help: 'Opening a data channel: dial, DataHello and DataHelloAck.',
      buckets: BUCKETS,
      registers,
    });
    const dial = new pc.Histogram({
      name: 'mtt_client_local_dial_seconds',
      help: 'Dialing the local service of a tunnel, by tunnel and result.',
      labelNames: ['tunnel', 'result'],
      buckets: BUCKETS,
      registers,
    });
    new pc.Gauge({
      name: 'mtt_client_connected',
      help: 'Whether the control channel to the server is up (0 or 1).',
      registers,
      collect() {
        this.set(box.state?.snapshot().connection.kind === 'connected' ? 1 : 0);
      },
    });
    registerFrameErrors(pc, registers, frameErrorCounts);
    new pc.Gauge({
      name: 'mtt_client_tunnel_up',
      help: 'Whether the tunnel is open on the server (1), or not (0).',
      labelNames: ['tunnel'],
      registers,
      collect() {
        this.reset();
        for (const t of tunnels()) this.set({ tunnel: t.name }, t.status === 'active' ? 1 : 0);
      },
    });
    new pc.Gauge({
      name: 'mtt_client_tunnel_connections_active',
      help: 'Tunneled connections open now.',
      labelNames: ['tunnel'],
      registers,
      collect() {
        this.reset();
        for (const t of tunnels()) this.set({ tunnel: t.name }, t.activeConnections);
      },
    });
    const perTunnel = (name: string, help: string, value: (t: TunnelView) => number) =>
      new pc.Counter({
        name,
        help,
        labelNames: ['tunnel'],
        registers,
        collect() {
          this.reset();
          for (const t of tunnels()) this.inc({ tunnel: t.name }, value(t));
        },
      });
    perTunnel(
      'mtt_client_tunnel_connections_total',
      'Tunneled connections served.',
      (t) => t.totalConnections,
    );
    perTunnel(
      'mtt_client_tunnel_local_dial_failures_total',
      'Dials of the local service that failed.',
      (t) => t.failedDials,
    );
    new pc.Counter({
      name: 'mtt_client_tunnel_bytes_total',
      help: 'Bytes carried, by direction (in: delivered to the local service; out: to the visitor).',
      labelNames: ['tunnel', 'direction'],
      registers,
      collect() {
        this.reset();
        for (const t of tunnels()) {
          this.inc({ tunnel: t.name, direction: 'in' }, t.bytesIn);
          this.inc({ tunnel: t.name, direction: 'out' }, t.bytesOut);
        }
      },
    });
    return new ClientMetrics(
      registers[0]!,
      {
        handshake: (s, ok) => handshake.observe({ result: ok ? 'ok' : 'refused' }, s),
        reconnect: () => reconnects.inc(),
        channelSetup: (s) => setup.observe(s),
        localDial: (tunnel, s, ok) => dial.observe({ tunnel, result: ok ? 'ok' : 'failed' }, s),
      },
      box,
    );
  }

  /** The client whose tunnels and connection the metrics read. */
  attach(state: StateStoreLike): void {
    this.#box.state = state;
  }

  /** Prometheus text: these metrics, then the process and runtime ones. */
  metrics(): Promise<string> {
    return exposition(this.#registry);
  }

  /** /readyz of a client: connected, and every enabled tunnel open on the server. */
  endpoint(): MetricsEndpoint {
    return {
      metrics: () => this.metrics(),
      ready: () => {
        const s = this.#box.state?.snapshot();
        if (!s) return { ready: false, checks: { started: false } };
        const tunnels = Object.fromEntries(s.tunnels.map((t) => [t.name, t.status]));
        const connected = s.connection.kind === 'connected';
        const open = s.tunnels.every((t) => !t.enabled || t.status === 'active');
        return {
          ready: connected && open && !s.paused,
          checks: { connection: s.connection.kind, paused: s.paused === true, tunnels },
        };
      },
    };
  }
}

/** A client started with metrics: where they are served, and a close that stops the listener too. */
export interface WithMetrics {
  /** The metrics listener's address; undefined without metrics. */
  metricsAddress: AddressInfo | undefined;
}

/**
 * Starts a client through `start`, feeding it an observer and serving its metrics on `at`
 * ("ADDR:PORT") when given. A listener that cannot start stops the client and throws.
 */
export async function withClientMetrics<
  C extends {
    state: StateStoreLike;
    closed: Promise<void>;
    close(o?: { dropConnections?: boolean }): Promise<void>;
  },
>(at: string | undefined, start: (observer?: ClientObserver) => C | Promise<C>): Promise<C & WithMetrics> {
  if (at === undefined) return Object.assign(await start(), { metricsAddress: undefined });
  const metrics = await ClientMetrics.create();
  const client = await start(metrics.observer);
  metrics.attach(client.state);
  const { host, port } = splitHostPort(at);
  let listener: Awaited<ReturnType<typeof serveMetricsHttp>>;
  try {
    listener = await serveMetricsHttp(metrics.endpoint(), host, port);
  } catch (err) {
    await client.close();
    throw err;
  }
  void client.closed.finally(() => listener.close()).catch(() => {});
  const close = client.close.bind(client);
  return Object.assign(client, {
    metricsAddress: listener.address,
    close: async (o?: { dropConnections?: boolean }) => {
      await close(o);
      await listener.close();
    },
  });
}
