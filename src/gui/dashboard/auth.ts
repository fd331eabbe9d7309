/**
 * Who may use the dashboard: a random token per start, handed over once in a login link and then kept
 * in an HttpOnly, SameSite=Strict cookie; one-time links for the app window (whose command line other
 * local users can read); the Host check against DNS rebinding; the same-origin check for changes.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, SECURITY_HEADERS } from './http.js';

/** How long a one-time login link stays valid. */
export const ONE_TIME_LOGIN_MS = 120_000;
/** Most one-time login links outstanding at once (each Show makes one). */
const MAX_ONE_TIME_LOGINS = 32;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The token, the one-time links and the request checks of one dashboard. */
export class DashboardAuth {
  readonly token: string;
  readonly cookieName: string;
  /** Host header values accepted: 127.0.0.1:PORT, localhost:PORT and any the user allowed. */
  readonly allowedHosts: readonly string[];
  /** Origins a change may come from (http:// plus each allowed host). */
  readonly allowedOrigins: readonly string[];
  #digest: Buffer;
  /** sha256(code) hex -> expiry time. */
  #oneTime = new Map<string, number>();

  constructor(opts: { port: number; token?: string; extraHosts?: readonly string[] }) {
    this.token = opts.token ?? randomBytes(32).toString('base64url');
    this.#digest = sha256(this.token);
    // Cookies ignore ports, so two dashboards on one machine need two cookie names.
    this.cookieName = `mtt_dashboard_${opts.port}`;
    this.allowedHosts = [`127.0.0.1:${opts.port}`, `localhost:${opts.port}`, ...(opts.extraHosts ?? [])];
    this.allowedOrigins = this.allowedHosts.map((h) => `http://${h}`);
  }

  #matches(candidate: string | undefined): boolean {
    return candidate !== undefined && timingSafeEqual(sha256(candidate), this.#digest);
  }

  #useOneTime(candidate: string): boolean {
    const now = Date.now();
    for (const [k, exp] of this.#oneTime) if (exp < now) this.#oneTime.delete(k);
    return this.#oneTime.delete(sha256(candidate).toString('hex'));
  }

  /** A login link that works once, for ONE_TIME_LOGIN_MS; the session token never appears in it. */
  oneTimeCode(): string {
    while (this.#oneTime.size >= MAX_ONE_TIME_LOGINS)
      this.#oneTime.delete(this.#oneTime.keys().next().value!);
    const code = randomBytes(32).toString('base64url');
    this.#oneTime.set(sha256(code).toString('hex'), Date.now() + ONE_TIME_LOGIN_MS);
    return code;
  }

  /** DNS rebinding: a page on evil.example resolved to 127.0.0.1 still sends Host: evil.example. */
  checkHost(req: IncomingMessage): void {
    if (!this.allowedHosts.includes(req.headers.host ?? '')) {
      throw new HttpError(
        421,
        'unexpected Host header; open the dashboard via 127.0.0.1 or localhost (or allow this address with --dashboard-host)',
      );
    }
  }

  /**
   * A login link (`?token=…`): moves the token into the cookie and redirects to `/`, always `/`: the
   * rest of the URL is the visitor's, and sending a browser there would be an open redirect.
   * Returns true when it answered the request.
   */
  login(req: IncomingMessage, res: ServerResponse, url: URL, onLogin: (oneTime: boolean) => void): boolean {
    const queryToken = url.searchParams.get('token');
    if (queryToken === null || req.method !== 'GET') return false;
    const session = this.#matches(queryToken);
    if (!session && !this.#useOneTime(queryToken)) {
      throw new HttpError(401, 'wrong or outdated token; use the newest link');
    }
    onLogin(!session);
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      'Set-Cookie': `${this.cookieName}=${this.token}; HttpOnly; SameSite=Strict; Path=/`,
      Location: '/',
      'Cache-Control': 'no-store',
    });
    res.end();
    return true;
  }

  /** Every other request needs the token: our cookie, or `Authorization: Bearer` for scripts. */
  requireToken(req: IncomingMessage): void {
    if (!this.#matches(readToken(req, this.cookieName))) {
      throw new HttpError(401, 'not logged in: open the link (with its token) that `mtt gui` printed');
    }
  }

  /** Cross-site requests must change nothing, even were the cookie to be sent. */
  requireSameOrigin(req: IncomingMessage): void {
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    if (
      (site !== undefined && site !== 'same-origin') ||
      (origin !== undefined && !this.allowedOrigins.includes(origin))
    ) {
      throw new HttpError(403, 'cross-origin request refused');
    }
  }
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
