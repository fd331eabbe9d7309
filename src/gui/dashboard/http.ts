/** HTTP plumbing shared by the dashboard's parts: errors as JSON, security headers, bounded JSON bodies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiError } from '../dashboard-types.js';

/** Largest JSON body the API accepts; a tunnel or the settings are a few hundred bytes. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Sent with every answer: a strict CSP (no inline script), no framing, no sniffing, no referrer. */
export const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** An error answered to the browser as JSON with a status code (and the fields at fault). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: ApiError['field'],
    readonly fields?: ApiError['fields'],
  ) {
    super(message);
  }
}

/** Answers `body` as JSON, never cached. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** Answers an error thrown by a handler: an HttpError as itself, anything else as a 500. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = err instanceof HttpError ? err.status : 500;
  const body: ApiError = { error: err instanceof Error ? err.message : String(err) };
  if (err instanceof HttpError && err.field !== undefined) body.field = err.field;
  if (err instanceof HttpError && err.fields !== undefined) body.fields = err.fields;
  sendJson(res, status, body);
}

/** Reads a JSON object body of at most MAX_BODY_BYTES; only `application/json` is accepted. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
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

/** decodeURIComponent that answers 400 instead of throwing on a malformed escape. */
export function decodePath(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'malformed URL');
  }
}
