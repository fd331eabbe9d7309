/** The built web app, served from its folder and never from outside it. */
import { readFile, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePath, HttpError, SECURITY_HEADERS } from './http.js';

/** The built web app shipped beside the dashboard (`npm run build` puts it in dist/src/gui/web/). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../web/', import.meta.url));

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

/** Answers one file of the web root for `pathname` ('/' is index.html); 404 for anything else. */
export async function serveStatic(
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
