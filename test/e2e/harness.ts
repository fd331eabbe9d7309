/** Real servers, clients and targets on loopback for the end-to-end tests. */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import {
  type ClientOptions,
  type MttClient,
  startClient,
  type TunnelConfig,
} from '../../src/client/index.js';
import {
  formatPublicKeyLine,
  generateIdentity,
  type Identity,
  parseAllowList,
} from '../../src/identity/index.js';
import { type MttServer, type ServerOptions, startServer } from '../../src/server/index.js';
import { createLogger, type Logger } from '../../src/util/logger.js';

/** One line of a captured JSON log. */
export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A debug-level logger whose lines a test can search and wait for (the server's reasons). */
export function captureLog(): {
  log: Logger;
  lines: LogLine[];
  waitFor(test: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
} {
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const log = createLogger({
    level: 'debug',
    format: 'json',
    write: (line) => {
      lines.push(JSON.parse(line) as LogLine);
      for (const w of [...waiters]) w();
    },
  });
  const waitFor = (test: (l: LogLine) => boolean, ms = 5000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(test);
        if (!hit) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching log line within ${ms} ms`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { log, lines, waitFor };
}

export { freePort } from '../lib/free-port.js';

/** Starts a TCP server on loopback port 0 and closes it (and its sockets) after the test. */
export async function listen(
  t: TestContext,
  onSocket: (s: Socket) => void,
  opts: { allowHalfOpen?: boolean } = {},
): Promise<Server & { port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

/** An echo service. */
export function echoServer(t: TestContext): Promise<Server & { port: number }> {
  return listen(t, (s) => s.pipe(s));
}

/** Connects to 127.0.0.1:port. */
export async function dial(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen ?? false });
  await once(s, 'connect');
  return s;
}

/** Reads a socket to its end. */
export async function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A server and a client of each other, on loopback. */
export interface Pair {
  server: MttServer;
  client: MttClient;
  serverIdentity: Identity;
  clientIdentity: Identity;
  clientOptions: ClientOptions;
  /** Starts another client against the same server (closed after the test). */
  startClient(over?: Partial<ClientOptions>): MttClient;
  /** Replaces the first client by one that reaches the server through a TestProxy. */
  viaProxy(over?: Partial<ClientOptions>): Promise<{ proxy: TestProxy; client: MttClient }>;
}

/**
 * Starts a server on 127.0.0.1 port 0 that lets `clientIdentity` in and opens any public port on
 * 127.0.0.1 (`over` changes any of it); closed after the test.
 */
export async function startTestServer(
  t: TestContext,
  clientIdentity: Identity,
  over: Partial<ServerOptions> = {},
): Promise<MttServer> {
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    identity: generateIdentity('test-server'),
    allowList: parseAllowList(formatPublicKeyLine(clientIdentity.publicRaw, 'test-client'), 'test'),
    publicHost: '127.0.0.1',
    allowPorts: [{ low: 1, high: 65535 }],
    ...over,
  });
  t.after(() => server.close());
  return server;
}

/** Starts a server and a client with the given tunnels; both are closed after the test. */
export async function startPair(
  t: TestContext,
  opts: { tunnels?: TunnelConfig[]; server?: Partial<ServerOptions>; client?: Partial<ClientOptions> } = {},
): Promise<Pair> {
  const serverIdentity = opts.server?.identity ?? generateIdentity('test-server');
  const clientIdentity = opts.client?.identity ?? generateIdentity('test-client');
  const server = await startTestServer(t, clientIdentity, { ...opts.server, identity: serverIdentity });
  const clientOptions: ClientOptions = {
    host: '127.0.0.1',
    port: server.address.port,
    identity: clientIdentity,
    serverKey: formatPublicKeyLine(serverIdentity.publicRaw),
    tunnels: opts.tunnels ?? [],
    reconnectMinMs: 50,
    reconnectMaxMs: 300,
    ...opts.client,
  };
  const clients: MttClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });
  const start = (over: Partial<ClientOptions> = {}) => {
    const c = startClient({ ...clientOptions, ...over });
    clients.push(c);
    return c;
  };
  const client = start();
  const viaProxy = async (over: Partial<ClientOptions> = {}) => {
    await client.close();
    const proxy = await startProxy(t, server.address.port);
    return { proxy, client: start({ port: proxy.port, ...over }) };
  };
  return { server, client, serverIdentity, clientIdentity, clientOptions, startClient: start, viaProxy };
}

/**
 * Waits until every enabled tunnel of the client is active. The bound leaves room for the client's
 * own retries of a refused tunnel (1, 2, 4 s...): a precondition, not what a test measures.
 */
export function tunnelsActive(client: MttClient, timeoutMs = 20_000) {
  return client.waitFor(
    (s) => s.connection.kind === 'connected' && s.tunnels.every((t) => !t.enabled || t.status === 'active'),
    timeoutMs,
  );
}

/** Resolves when `emitter` emits `event`, or rejects after `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP proxy in front of a port, for cutting and freezing links. */
export interface TestProxy {
  port: number;
  /** Connections in the order they were opened: [from client, to server]. */
  links: Array<{ client: Socket; server: Socket }>;
  /** Destroys one link, both sides. */
  cut(index: number): void;
  /** Stops forwarding anything, in both directions, on every link (a frozen peer). */
  blackhole(): void;
  /**
   * Forwards at most `bytesPerTick` from the server per 10 ms on each link (a slow link, which
   * backs up, as someone on the path can also make it), or at full speed again with undefined.
   * `toServer` throttles the other direction instead (what the client sends).
   */
  throttle(bytesPerTick: number | undefined, direction?: 'toClient' | 'toServer'): void;
  /** Hands every chunk from the server, on each link opened after this call, to `listener`. */
  tapServer(listener: (upstream: Socket, chunk: Buffer) => void): void;
}

/** Starts a proxy to 127.0.0.1:targetPort. */
export async function startProxy(t: TestContext, targetPort: number): Promise<TestProxy> {
  let frozen = false;
  let budget: number | undefined;
  let budgetUp: number | undefined;
  const taps: Array<(upstream: Socket, chunk: Buffer) => void> = [];
  const links: TestProxy['links'] = [];
  const server = await listen(
    t,
    (client) => {
      const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      links.push({ client, server: upstream });
      for (const tap of taps) upstream.on('data', (c: Buffer) => tap(upstream, c));
      const forward = (from: Socket, to: Socket) => {
        from.on('data', (c: Buffer) => {
          if (!frozen && !to.write(c)) {
            from.pause();
            to.once('drain', () => from.resume());
          } else if ((from === upstream ? budget : budgetUp) !== undefined) {
            // A slow link: this chunk takes its share of the time before the next one is read.
            from.pause();
            setTimeout(
              () => from.resume(),
              Math.ceil((10 * c.length) / (from === upstream ? budget : budgetUp)!),
            );
          }
        });
        from.on('end', () => {
          if (!frozen) to.end();
        });
        from.on('close', () => {
          if (!frozen) to.destroy();
        });
      };
      forward(client, upstream);
      forward(upstream, client);
    },
    { allowHalfOpen: true },
  );
  t.after(() => {
    for (const l of links) {
      l.client.destroy();
      l.server.destroy();
    }
  });
  return {
    port: server.port,
    links,
    cut(i) {
      links[i]?.client.destroy();
      links[i]?.server.destroy();
    },
    blackhole() {
      frozen = true;
    },
    tapServer(listener) {
      taps.push(listener);
    },
    throttle(bytesPerTick, direction = 'toClient') {
      if (direction === 'toClient') budget = bytesPerTick;
      else budgetUp = bytesPerTick;
    },
  };
}
