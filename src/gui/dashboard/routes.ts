/**
 * The dashboard's JSON API, one table entry per route: the tunnel calls go to the client's
 * TunnelManager, whose ConfigError names each wrong field; nothing guesses a field from message text.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StateStoreLike, TunnelConfig, TunnelManagerLike } from '../../client/index.js';
import { ConfigError, TUNNEL_FIELDS, type TunnelField } from '../../config/index.js';
import type { ApiError } from '../dashboard-types.js';
import { decodePath, HttpError, readJson, sendJson } from './http.js';

/** What the routes act on. */
export interface RouteContext {
  state: StateStoreLike;
  tunnels: TunnelManagerLike;
  /** The current state as the event stream sends it. */
  update(): unknown;
  /** Opens an event stream on this response. */
  openEvents(res: ServerResponse): void;
}

/** One request as a handler sees it. */
export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path's captured parts, URL-decoded. */
  params: string[];
  body(): Promise<Record<string, unknown>>;
}

/** One API route: method, path pattern (anchored), handler. */
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: RegExp;
  handle(r: RouteRequest): Promise<void> | void;
}

const isTunnelField = (f: string): f is TunnelField => (TUNNEL_FIELDS as readonly string[]).includes(f);

/** Copies only the tunnel fields; their values are checked by the TunnelManager. */
function pickTunnel(body: Record<string, unknown>): TunnelConfig {
  const out: Record<string, unknown> = {};
  for (const f of TUNNEL_FIELDS) if (Object.hasOwn(body, f)) out[f] = body[f];
  return out as TunnelConfig;
}

/** Runs a client call, turning its ConfigError into a 400 that names each wrong field. */
export function callClient<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asHttpError(err);
  }
}

/**
 * A ConfigError as a 400 naming its fields; anything else unchanged (it answers 500). `known` says
 * which field names the caller's form has (the tunnel fields by default).
 */
export function asHttpError(err: unknown, known: (f: string) => boolean = isTunnelField): unknown {
  if (!(err instanceof ConfigError)) return err;
  const fields: Record<string, string> = {};
  for (const i of err.issues) if (known(i.field)) fields[i.field] ??= i.message;
  return new HttpError(
    400,
    err.message,
    (known(err.field) ? err.field : undefined) as ApiError['field'],
    fields as ApiError['fields'],
  );
}

const ok = (res: ServerResponse, status = 200) => sendJson(res, status, { ok: true });

/** The routes every dashboard has. */
export function coreRoutes(ctx: RouteContext): Route[] {
  return [
    { method: 'GET', path: /^\/api\/state$/, handle: ({ res }) => sendJson(res, 200, ctx.update()) },
    { method: 'GET', path: /^\/api\/events$/, handle: ({ res }) => ctx.openEvents(res) },
    { method: 'GET', path: /^\/api\/tunnels$/, handle: ({ res }) => sendJson(res, 200, ctx.tunnels.list()) },
    {
      method: 'POST',
      path: /^\/api\/tunnels$/,
      handle: async ({ res, body }) => {
        const tunnel = pickTunnel(await body());
        callClient(() => ctx.tunnels.add(tunnel));
        ok(res, 201);
      },
    },
    {
      method: 'PUT',
      path: /^\/api\/tunnels\/([^/]+)$/,
      handle: async ({ res, params, body }) => {
        const tunnel = pickTunnel(await body());
        callClient(() => ctx.tunnels.update(params[0]!, tunnel));
        ok(res);
      },
    },
    {
      method: 'DELETE',
      path: /^\/api\/tunnels\/([^/]+)$/,
      handle: ({ res, params }) => {
        callClient(() => ctx.tunnels.remove(params[0]!));
        ok(res);
      },
    },
    {
      method: 'PUT',
      path: /^\/api\/tunnels\/([^/]+)\/enabled$/,
      handle: async ({ res, params, body }) => {
        const { enabled } = await body();
        if (typeof enabled !== 'boolean')
          throw new HttpError(400, 'enabled must be true or false', 'enabled');
        callClient(() => ctx.tunnels.setEnabled(params[0]!, enabled));
        ok(res);
      },
    },
  ];
}

/** Finds the route for a request and runs it: 404 for an unknown path, 405 for a wrong method. */
export async function dispatch(
  routes: readonly Route[],
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  let pathMatched = false;
  for (const route of routes) {
    const m = route.path.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (route.method !== req.method) continue;
    await route.handle({ req, res, params: m.slice(1).map((p) => decodePath(p)), body: () => readJson(req) });
    return;
  }
  throw pathMatched ? new HttpError(405, 'method not allowed') : new HttpError(404, 'no such API');
}
