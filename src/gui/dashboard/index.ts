/**
 * The dashboard's HTTP server: the built web app plus a small JSON API over the client's StateStore and
 * TunnelManager, with state pushed to the page as Server-Sent Events.
 *
 * It listens on 127.0.0.1 only and defends a loopback server the way a browser needs it to (auth.ts):
 * a token per start kept in an HttpOnly, SameSite=Strict cookie; a Host check against DNS rebinding;
 * changes only from our own origin. The parts: auth.ts (who), routes.ts (what), events.ts (pushes),
 * static-files.ts (the page), rates.ts (the sparklines).
 *
 * Built on node:http rather than a router library: see src/gui/README.md for the measurement.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StateStoreLike, TunnelManagerLike } from '../../client/index.js';
import type { DashboardUpdate } from '../dashboard-types.js';
import { DashboardAuth } from './auth.js';
import { EventHub } from './events.js';
import { HttpError, sendError } from './http.js';
import { RateHistory } from './rates.js';
import { coreRoutes, dispatch, type Route, type RouteContext } from './routes.js';
import { DEFAULT_WEB_ROOT, serveStatic } from './static-files.js';

export { ONE_TIME_LOGIN_MS } from './auth.js';
export { PUSH_COALESCE_MS, SSE_KEEPALIVE_MS } from './events.js';
export { MAX_BODY_BYTES } from './http.js';
export type { Route, RouteContext, RouteRequest } from './routes.js';
export { DEFAULT_WEB_ROOT } from './static-files.js';

/** Options for {@link startDashboard}. */
export interface DashboardOptions {
  /** The client's observable state. */
  state: StateStoreLike;
  /** The client's tunnel control. */
  tunnels: TunnelManagerLike;
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /**
   * More `Host` header values to accept besides 127.0.0.1:PORT and localhost:PORT, e.g.
   * "localhost:8080" when the dashboard is reached through `ssh -L 8080:127.0.0.1:PORT`.
   */
  extraHosts?: readonly string[];
  /** More API routes (the GUI's settings, quit, …), tried before the built-in ones. */
  routes?: (ctx: RouteContext) => Route[];
  /** Folder holding the built web app (index.html + assets/). Defaults to {@link DEFAULT_WEB_ROOT}. */
  webRoot?: string;
  /** Interval of the transfer-rate samples behind the sparklines. Default 1000 ms. */
  sampleMs?: number;
  /** How many rate samples to keep per tunnel. Default 60. */
  historyLength?: number;
  /** Extra fields merged into every pushed update (the GUI's own state: settings, window). */
  extra?: () => Record<string, unknown>;
  /** Closes the dashboard when aborted. */
  signal?: AbortSignal;
  /** Fixed token, for tests only; a random one is made otherwise. */
  token?: string;
  /** Called each time a browser logs in with a link (for the log: who opened the dashboard, when). */
  onLogin?: (info: { oneTime: boolean; userAgent: string | undefined }) => void;
}

/** A running dashboard server. */
export interface Dashboard {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** The URL that logs a browser in: the origin plus `/?token=...`. Treat it as a secret. */
  readonly loginUrl: string;
  /**
   * A login URL that works once and for {@link ONE_TIME_LOGIN_MS}: for launching a browser, whose
   * command line other local users can read, so the session token itself never appears there.
   */
  oneTimeLoginUrl(): string;
  /** Name of the cookie that carries the token (one per port, since cookies ignore ports). */
  readonly cookieName: string;
  /** Pushes the state to every page now-ish (after something outside the StateStore changed). */
  refresh(): void;
  /** Sends one named event to every open page. */
  broadcast(event: string, data: unknown): void;
  /** Stops listening and ends every open event stream. */
  close(): Promise<void>;
}

/** Starts the dashboard on 127.0.0.1 and resolves once it listens. */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const webRoot = opts.webRoot ?? DEFAULT_WEB_ROOT;
  const sampleMs = opts.sampleMs ?? 1000;
  const rates = new RateHistory(opts.historyLength ?? 60);

  const makeUpdate = (): DashboardUpdate => {
    const snapshot = opts.state.snapshot();
    return {
      ...opts.extra?.(),
      snapshot,
      rates: rates.forTunnels(snapshot.tunnels.map((t) => t.name)),
      sampleMs,
      now: Date.now(),
    };
  };
  const hub = new EventHub(() => JSON.stringify(makeUpdate()));
  const onChange = (): void => hub.schedule();
  opts.state.on('change', onChange);
  const sampler = setInterval(() => {
    if (rates.sample(opts.state.snapshot().tunnels)) hub.schedule();
  }, sampleMs);
  sampler.unref();

  const ctx: RouteContext = {
    state: opts.state,
    tunnels: opts.tunnels,
    update: makeUpdate,
    openEvents: (res) => hub.open(res),
  };
  const routes = [...(opts.routes?.(ctx) ?? []), ...coreRoutes(ctx)];
  let auth: DashboardAuth | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const a = auth!;
    a.checkHost(req);
    const url = new URL(req.url ?? '/', a.allowedOrigins[0]);
    const method = req.method ?? 'GET';
    const loggedIn = a.login(req, res, url, (oneTime) =>
      opts.onLogin?.({ oneTime, userAgent: req.headers['user-agent'] }),
    );
    if (loggedIn) return;
    a.requireToken(req);
    if (method !== 'GET' && method !== 'HEAD') a.requireSameOrigin(req);
    if (url.pathname.startsWith('/api/')) return dispatch(routes, req, res, url.pathname);
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method not allowed');
    await serveStatic(res, webRoot, url.pathname, method === 'HEAD');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });
  // A dashboard has one user; keep the idle-socket count low and bounded.
  server.maxHeadersCount = 64;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  auth = new DashboardAuth({
    port,
    ...(opts.token !== undefined ? { token: opts.token } : {}),
    ...(opts.extraHosts ? { extraHosts: opts.extraHosts } : {}),
  });
  const origin = `http://127.0.0.1:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      opts.state.off('change', onChange);
      clearInterval(sampler);
      hub.close();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  opts.signal?.addEventListener('abort', () => void close(), { once: true });
  if (opts.signal?.aborted) await close();

  const a = auth;
  return {
    port,
    origin,
    loginUrl: `${origin}/?token=${a.token}`,
    oneTimeLoginUrl: () => `${origin}/?token=${a.oneTimeCode()}`,
    cookieName: a.cookieName,
    refresh: () => hub.schedule(),
    broadcast: (event, data) => hub.broadcast(event, data),
    close,
  };
}
