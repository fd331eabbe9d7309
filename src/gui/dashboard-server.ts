/**
 * The dashboard's HTTP server: the built web app plus a small JSON API over the client's StateStore and
 * TunnelManager, with state pushed to the page as Server-Sent Events.
 *
 * It listens on 127.0.0.1 only and defends a loopback server the way a browser needs it to:
 * - a random token per start, handed over once in the URL and then kept in an HttpOnly, SameSite=Strict
 *   cookie (the URL is cleaned by a redirect), so another local page or user cannot drive it;
 * - the Host header must be 127.0.0.1:PORT or localhost:PORT, which defeats DNS rebinding;
 * - a mutating request must come from our own origin (Origin / Sec-Fetch-Site), so a cross-site form or
 *   fetch changes nothing even if it somehow carried the cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StateStoreLike, TunnelConfig, TunnelManagerLike } from '../client/api.js';
import { TUNNEL_FIELDS, type TunnelField } from '../config/client-config.js';
import { ConfigError } from '../config/config-error.js';
import type { ApiError, DashboardUpdate, TunnelRates } from './dashboard-types.js';

/** The built web app shipped beside this file (`npm run build` puts it there). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('./web/', import.meta.url));

/** Largest JSON body the API accepts; a tunnel config is a few hundred bytes. */
export const MAX_BODY_BYTES = 16 * 1024;
/** Coalesce bursts of 'change' events into at most one push per this many milliseconds. */
export const PUSH_COALESCE_MS = 100;
/** A comment line on idle event streams keeps proxies and the browser from timing them out. */
export const SSE_KEEPALIVE_MS = 20_000;
/** How long a one-time login link stays valid. */
export const ONE_TIME_LOGIN_MS = 120_000;
/** Most one-time login links outstanding at once (each Show makes one). */
const MAX_ONE_TIME_LOGINS = 32;

/** Options for {@link startDashboard}. */
export interface DashboardOptions {
  /** The client's observable state. */
  state: StateStoreLike;
  /** The client's tunnel control. */
  tunnels: TunnelManagerLike;
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Folder holding the built web app (index.html + assets/). Defaults to {@link DEFAULT_WEB_ROOT}. */
  webRoot?: string;
  /** Interval of the transfer-rate samples behind the sparklines. Default 1000 ms. */
  sampleMs?: number;
  /** How many rate samples to keep per tunnel. Default 60. */
  historyLength?: number;
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
  /** Stops listening and ends every open event stream. */
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** An error answered to the browser as JSON with a status code. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: TunnelField,
    readonly fields?: ApiError['fields'],
  ) {
    super(message);
  }
}

/** Starts the dashboard on 127.0.0.1 and resolves once it listens. */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const webRoot = opts.webRoot ?? DEFAULT_WEB_ROOT;
  const sampleMs = opts.sampleMs ?? 1000;
  const historyLength = opts.historyLength ?? 60;
  const token = opts.token ?? randomBytes(32).toString('base64url');
  const tokenDigest = sha256(token);
  const rates = new RateHistory(historyLength);
  const streams = new Set<EventStream>();
  let port = 0;
  let cookieName = 'mtt_dashboard';
  let allowedHosts: string[] = [];
  let allowedOrigins: string[] = [];

  const tokenMatches = (candidate: string | undefined): boolean =>
    candidate !== undefined && timingSafeEqual(sha256(candidate), tokenDigest);
  /** sha256(code) hex -> expiry time. */
  const oneTime = new Map<string, number>();
  const useOneTime = (candidate: string): boolean => {
    const now = Date.now();
    for (const [k, exp] of oneTime) if (exp < now) oneTime.delete(k);
    const key = sha256(candidate).toString('hex');
    return oneTime.delete(key);
  };

  const makeUpdate = (): DashboardUpdate => {
    const snapshot = opts.state.snapshot();
    return {
      snapshot,
      rates: rates.forTunnels(snapshot.tunnels.map((t) => t.name)),
      sampleMs,
      now: Date.now(),
    };
  };

  // Coalesce 'change' bursts (a busy tunnel counts bytes many times a second) into one push.
  let pushTimer: NodeJS.Timeout | undefined;
  const schedulePush = (): void => {
    if (pushTimer !== undefined || streams.size === 0) return;
    pushTimer = setTimeout(() => {
      pushTimer = undefined;
      const data = JSON.stringify(makeUpdate());
      for (const s of streams) s.send('state', data);
    }, PUSH_COALESCE_MS);
  };
  const onChange = (): void => schedulePush();
  opts.state.on('change', onChange);

  const sampler = setInterval(() => {
    if (rates.sample(opts.state.snapshot().tunnels)) schedulePush();
  }, sampleMs);
  sampler.unref();
  const keepalive = setInterval(() => {
    for (const s of streams) s.comment('keepalive');
  }, SSE_KEEPALIVE_MS);
  keepalive.unref();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // DNS rebinding: a page on evil.example resolved to 127.0.0.1 still sends Host: evil.example.
    if (!allowedHosts.includes(req.headers.host ?? '')) {
      throw new HttpError(421, 'unexpected Host header; open the dashboard via 127.0.0.1 or localhost');
    }
    const url = new URL(req.url ?? '/', allowedOrigins[0]);
    const method = req.method ?? 'GET';

    // The one-time login link: move the token into a cookie and clean the URL.
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null && method === 'GET') {
      const session = tokenMatches(queryToken);
      if (!session && !useOneTime(queryToken)) {
        throw new HttpError(401, 'wrong or outdated token; use the newest link');
      }
      opts.onLogin?.({ oneTime: !session, userAgent: req.headers['user-agent'] });
      url.searchParams.delete('token');
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        'Set-Cookie': `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/`,
        Location: url.pathname + url.search,
        'Cache-Control': 'no-store',
      });
      res.end();
      return;
    }
    if (!tokenMatches(readToken(req, cookieName))) {
      throw new HttpError(401, 'not logged in: open the link (with its token) that `mtt gui` printed');
    }

    if (method !== 'GET' && method !== 'HEAD') {
      // Cross-site requests must change nothing, even were the cookie to be sent.
      const site = req.headers['sec-fetch-site'];
      const origin = req.headers.origin;
      if (
        (site !== undefined && site !== 'same-origin') ||
        (origin !== undefined && !allowedOrigins.includes(origin))
      ) {
        throw new HttpError(403, 'cross-origin request refused');
      }
    }

    if (url.pathname.startsWith('/api/')) {
      await handleApi(req, res, method, url.pathname);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method not allowed');
    await serveStatic(res, webRoot, url.pathname, method === 'HEAD');
  };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, method: string, path: string) => {
    if (path === '/api/state' && method === 'GET') return sendJson(res, 200, makeUpdate());
    if (path === '/api/events' && method === 'GET') {
      const stream = new EventStream(res);
      streams.add(stream);
      res.on('close', () => streams.delete(stream));
      stream.send('state', JSON.stringify(makeUpdate()));
      return;
    }
    if (path === '/api/tunnels') {
      if (method === 'GET') return sendJson(res, 200, opts.tunnels.list());
      if (method === 'POST') {
        const tunnel = pickTunnel(await readJson(req));
        callManager(() => opts.tunnels.add(tunnel));
        return sendJson(res, 201, { ok: true });
      }
      throw new HttpError(405, 'method not allowed');
    }
    const m = /^\/api\/tunnels\/([^/]+)(\/enabled)?$/.exec(path);
    if (m) {
      const name = decodePath(m[1]!);
      if (m[2] !== undefined) {
        if (method !== 'PUT') throw new HttpError(405, 'method not allowed');
        const body = await readJson(req);
        if (typeof body.enabled !== 'boolean')
          throw new HttpError(400, 'enabled must be true or false', 'enabled');
        const enabled = body.enabled;
        callManager(() => opts.tunnels.setEnabled(name, enabled));
        return sendJson(res, 200, { ok: true });
      }
      if (method === 'PUT') {
        const tunnel = pickTunnel(await readJson(req));
        callManager(() => opts.tunnels.update(name, tunnel));
        return sendJson(res, 200, { ok: true });
      }
      if (method === 'DELETE') {
        callManager(() => opts.tunnels.remove(name));
        return sendJson(res, 200, { ok: true });
      }
      throw new HttpError(405, 'method not allowed');
    }
    throw new HttpError(404, 'no such API');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = err instanceof HttpError ? err.status : 500;
      const body: ApiError = { error: err instanceof Error ? err.message : String(err) };
      if (err instanceof HttpError && err.field !== undefined) body.field = err.field;
      if (err instanceof HttpError && err.fields !== undefined) body.fields = err.fields;
      sendJson(res, status, body);
    });
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
  port = (server.address() as AddressInfo).port;
  cookieName = `mtt_dashboard_${port}`;
  allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  allowedOrigins = allowedHosts.map((h) => `http://${h}`);
  const origin = allowedOrigins[0]!;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      opts.state.off('change', onChange);
      clearInterval(sampler);
      clearInterval(keepalive);
      if (pushTimer !== undefined) clearTimeout(pushTimer);
      for (const s of streams) s.end();
      streams.clear();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  opts.signal?.addEventListener('abort', () => void close(), { once: true });
  if (opts.signal?.aborted) await close();

  const oneTimeLoginUrl = (): string => {
    while (oneTime.size >= MAX_ONE_TIME_LOGINS) oneTime.delete(oneTime.keys().next().value!);
    const code = randomBytes(32).toString('base64url');
    oneTime.set(sha256(code).toString('hex'), Date.now() + ONE_TIME_LOGIN_MS);
    return `${origin}/?token=${code}`;
  };

  return { port, origin, loginUrl: `${origin}/?token=${token}`, oneTimeLoginUrl, cookieName, close };
}

/** One open Server-Sent Events response. Drops intermediate states while the socket is full. */
class EventStream {
  #res: ServerResponse;
  #pending: string | undefined;
  #blocked = false;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    res.on('drain', () => {
      this.#blocked = false;
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending !== undefined) this.#write(pending);
    });
  }

  /** Sends one event; while the socket is backed up only the newest state is kept. */
  send(event: string, data: string): void {
    const chunk = `event: ${event}\ndata: ${data}\n\n`;
    if (this.#blocked) this.#pending = chunk;
    else this.#write(chunk);
  }

  comment(text: string): void {
    if (!this.#blocked) this.#write(`: ${text}\n\n`);
  }

  end(): void {
    this.#res.end();
  }

  #write(chunk: string): void {
    if (!this.#res.write(chunk)) this.#blocked = true;
  }
}

/** Per-tunnel byte-rate history, sampled at a fixed interval. */
class RateHistory {
  #length: number;
  #last = new Map<string, { bytesIn: number; bytesOut: number; at: number }>();
  #history = new Map<string, TunnelRates>();

  constructor(length: number) {
    this.#length = length;
  }

  /** Records one sample; returns true when any rate is or just was non-zero (worth a push). */
  sample(tunnels: readonly { name: string; bytesIn: number; bytesOut: number }[]): boolean {
    const now = performance.now();
    let interesting = false;
    const seen = new Set<string>();
    for (const t of tunnels) {
      seen.add(t.name);
      const last = this.#last.get(t.name);
      this.#last.set(t.name, { bytesIn: t.bytesIn, bytesOut: t.bytesOut, at: now });
      if (last === undefined) continue;
      const secs = Math.max((now - last.at) / 1000, 0.001);
      // A counter that went down means the tunnel was replaced; count that sample as zero.
      const rin = Math.max(0, (t.bytesIn - last.bytesIn) / secs);
      const rout = Math.max(0, (t.bytesOut - last.bytesOut) / secs);
      let h = this.#history.get(t.name);
      if (h === undefined) {
        h = { in: [], out: [] };
        this.#history.set(t.name, h);
      }
      const prevNonZero = (h.in.at(-1) ?? 0) > 0 || (h.out.at(-1) ?? 0) > 0;
      h.in.push(Math.round(rin));
      h.out.push(Math.round(rout));
      if (h.in.length > this.#length) h.in.shift();
      if (h.out.length > this.#length) h.out.shift();
      if (rin > 0 || rout > 0 || prevNonZero) interesting = true;
    }
    for (const name of [...this.#last.keys()]) {
      if (!seen.has(name)) {
        this.#last.delete(name);
        this.#history.delete(name);
      }
    }
    return interesting;
  }

  forTunnels(names: readonly string[]): Record<string, TunnelRates> {
    const out: Record<string, TunnelRates> = {};
    for (const n of names) out[n] = this.#history.get(n) ?? { in: [], out: [] };
    return out;
  }
}

/** decodeURIComponent that answers 400 instead of throwing on a malformed escape. */
function decodePath(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'malformed URL');
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The token from our cookie, or from `Authorization: Bearer` for scripts. */
function readToken(req: IncomingMessage, cookieName: string): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === cookieName) return part.slice(eq + 1).trim();
  }
  return undefined;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  // Requiring JSON also means a cross-site <form> (which cannot send it) never gets this far.
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'send Content-Type: application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** Copies only the known tunnel fields; their values are checked by the TunnelManager. */
function pickTunnel(body: Record<string, unknown>): TunnelConfig {
  const out: Record<string, unknown> = {};
  for (const f of TUNNEL_FIELDS) if (Object.hasOwn(body, f)) out[f] = body[f];
  return out as unknown as TunnelConfig;
}

const isTunnelField = (f: string): f is TunnelField => (TUNNEL_FIELDS as readonly string[]).includes(f);

/** Runs a TunnelManager call, turning its ConfigError into a 400 that names each wrong field. */
function callManager(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const fields: NonNullable<ApiError['fields']> = {};
    for (const i of err.issues) if (isTunnelField(i.field)) fields[i.field] ??= i.message;
    throw new HttpError(400, err.message, isTunnelField(err.field) ? err.field : undefined, fields);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

async function serveStatic(
  res: ServerResponse,
  root: string,
  pathname: string,
  headOnly: boolean,
): Promise<void> {
  const rel = pathname === '/' ? 'index.html' : decodePath(pathname.slice(1));
  const full = normalize(join(root, rel));
  if (!full.startsWith(normalize(root + sep)) || rel.includes('\0')) throw new HttpError(404, 'not found');
  let body: Buffer;
  try {
    if (!(await stat(full)).isFile()) throw new Error('not a file');
    body = await readFile(full);
  } catch {
    if (rel === 'index.html') {
      throw new HttpError(500, `the web app is not built (no ${full}); run npm run build`);
    }
    throw new HttpError(404, 'not found');
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': CONTENT_TYPES[extname(full)] ?? 'application/octet-stream',
    'Content-Length': body.length,
    // Vite names assets by content hash, so they never change; the page itself must not be cached.
    'Cache-Control': rel.startsWith('assets/') ? 'private, max-age=31536000, immutable' : 'no-store',
  });
  res.end(headOnly ? undefined : body);
}
