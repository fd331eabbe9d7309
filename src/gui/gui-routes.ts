/**
 * The dashboard routes that only the desktop GUI has: Quit, Reconnect now, Pause all, Retry, the
 * settings view (client settings, the GUI's preferences, export of the config), on top of the tunnel
 * routes every dashboard has (dashboard/routes.ts).
 */
import type { LiveSettingsPatch } from '../client/index.js';
import { HttpError, SECURITY_HEADERS, sendJson } from './dashboard/http.js';
import type { Route } from './dashboard/index.js';
import { asHttpError, callClient } from './dashboard/routes.js';
import type { GuiPreferences } from './dashboard-types.js';
import type { GuiSession } from './gui-session.js';

/** What the GUI routes act on. */
export interface GuiRouteContext {
  /** The GUI around the running client; undefined during the first-run setup. */
  session(): GuiSession | undefined;
  /** Ends every connection and the process. */
  quit(): void;
}

/** The settings the settings view may send, and what each must be. */
const SETTING_TYPES = {
  server: 'string',
  serverKey: 'string',
  heartbeatSeconds: 'number',
  heartbeatTimeoutSeconds: 'number',
  reconnectMaxSeconds: 'number',
} as const;
const PREFERENCES = ['notifications', 'startAtLogin', 'launcher'] as const;

const isSetting = (f: string) => Object.hasOwn(SETTING_TYPES, f);

/** The GUI's own API routes. */
export function guiRoutes(g: GuiRouteContext): Route[] {
  const session = (): GuiSession => {
    const s = g.session();
    if (!s) throw new HttpError(409, 'set up the server first');
    return s;
  };
  const client = {
    get tunnels() {
      return session().client.tunnels;
    },
    reconnectNow: () => session().client.reconnectNow(),
    pause: (paused: boolean) => session().client.pause(paused),
  };
  const ok = (res: Parameters<typeof sendJson>[0]) => sendJson(res, 200, { ok: true });
  return [
    {
      method: 'POST',
      path: /^\/api\/quit$/,
      handle: ({ res }) => {
        // Quit works during the setup too.
        ok(res);
        // Answer first: the page then shows that mtt has quit instead of a failed request.
        setImmediate(() => g.quit());
      },
    },
    {
      method: 'POST',
      path: /^\/api\/reconnect$/,
      handle: ({ res }) => {
        client.reconnectNow();
        ok(res);
      },
    },
    {
      method: 'PUT',
      path: /^\/api\/paused$/,
      handle: async ({ res, body }) => {
        const { paused } = await body();
        if (typeof paused !== 'boolean') throw new HttpError(400, 'paused must be true or false');
        client.pause(paused);
        ok(res);
      },
    },
    {
      method: 'POST',
      path: /^\/api\/tunnels\/([^/]+)\/retry$/,
      handle: ({ res, params }) => {
        callClient(() => client.tunnels.retry(params[0]!));
        ok(res);
      },
    },
    {
      method: 'PUT',
      path: /^\/api\/settings$/,
      handle: async ({ res, body }) => {
        const b = await body();
        const patch: Record<string, unknown> = {};
        for (const [k, type] of Object.entries(SETTING_TYPES)) {
          if (!Object.hasOwn(b, k)) continue;
          const v = b[k];
          // An empty server key unpins it (trust on first use again).
          if (k === 'serverKey' && (v === '' || v === null)) patch[k] = undefined;
          else if (typeof v === type) patch[k] = typeof v === 'string' ? v.trim() : v;
          else
            throw new HttpError(400, `${k} must be a ${type}`, undefined, {
              [k]: `must be a ${type}`,
            } as never);
        }
        try {
          await session().updateSettings(patch as LiveSettingsPatch);
        } catch (err) {
          throw asHttpError(err, isSetting);
        }
        ok(res);
      },
    },
    {
      method: 'PUT',
      path: /^\/api\/preferences$/,
      handle: async ({ res, body }) => {
        const b = await body();
        const patch: Partial<GuiPreferences> = {};
        for (const k of PREFERENCES) {
          if (!Object.hasOwn(b, k)) continue;
          if (typeof b[k] !== 'boolean') throw new HttpError(400, `${k} must be true or false`);
          patch[k] = b[k] as boolean;
        }
        await session().setPreferences(patch);
        ok(res);
      },
    },
    {
      method: 'GET',
      path: /^\/api\/config$/,
      handle: async ({ res }) => {
        const { filename, text } = await session().exportConfig();
        const safe = filename.replace(/[^A-Za-z0-9._-]/g, '_');
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Disposition': `attachment; filename="${safe}"`,
          'Content-Length': Buffer.byteLength(text),
          'Cache-Control': 'no-store',
        });
        res.end(text);
      },
    },
  ];
}
