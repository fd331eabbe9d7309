/**
 * The dashboard routes that only the desktop GUI has: Quit, Reconnect now, Pause all, Retry, on top of
 * the tunnel routes every dashboard has (dashboard/routes.ts).
 */
import type { MttClient } from '../client/index.js';
import { HttpError, sendJson } from './dashboard/http.js';
import type { Route } from './dashboard/index.js';
import { callClient } from './dashboard/routes.js';

/** What the GUI routes act on. */
export interface GuiRouteContext {
  client: MttClient;
  /** Ends every connection and the process. */
  quit(): void;
}

/** The GUI's own API routes. */
export function guiRoutes(g: GuiRouteContext): Route[] {
  const ok = (res: Parameters<typeof sendJson>[0]) => sendJson(res, 200, { ok: true });
  return [
    {
      method: 'POST',
      path: /^\/api\/quit$/,
      handle: ({ res }) => {
        ok(res);
        // Answer first: the page then shows that mtt has quit instead of a failed request.
        setImmediate(() => g.quit());
      },
    },
    {
      method: 'POST',
      path: /^\/api\/reconnect$/,
      handle: ({ res }) => {
        g.client.reconnectNow();
        ok(res);
      },
    },
    {
      method: 'PUT',
      path: /^\/api\/paused$/,
      handle: async ({ res, body }) => {
        const { paused } = await body();
        if (typeof paused !== 'boolean') throw new HttpError(400, 'paused must be true or false');
        g.client.pause(paused);
        ok(res);
      },
    },
    {
      method: 'POST',
      path: /^\/api\/tunnels\/([^/]+)\/retry$/,
      handle: ({ res, params }) => {
        callClient(() => g.client.tunnels.retry(params[0]!));
        ok(res);
      },
    },
  ];
}
