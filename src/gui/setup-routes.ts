/** The first-run route: the setup view's answers become the config file. */

import { HttpError, sendJson } from './dashboard/http.js';
import type { Route } from './dashboard/index.js';
import { asHttpError } from './dashboard/routes.js';
import { type LateClient, writeFirstConfig } from './setup.js';

const isSetupField = (f: string) => f === 'server' || f === 'serverKey';

export function setupRoutes(s: { late: LateClient; done(): void }): Route[] {
  return [
    {
      method: 'POST',
      path: /^\/api\/setup$/,
      handle: async ({ res, body }) => {
        const info = s.late.setup;
        if (!info) throw new HttpError(409, 'mtt is set up already');
        const b = await body();
        if (typeof b.server !== 'string')
          throw new HttpError(400, 'server address is required', undefined, {
            server: 'server address is required',
          } as never);
        if (b.serverKey !== undefined && typeof b.serverKey !== 'string')
          throw new HttpError(400, 'server key must be text');
        try {
          await writeFirstConfig(info, {
            server: b.server,
            ...(typeof b.serverKey === 'string' ? { serverKey: b.serverKey } : {}),
          });
        } catch (err) {
          throw asHttpError(err, isSetupField);
        }
        sendJson(res, 201, { ok: true, configPath: info.configPath });
        s.done();
      },
    },
  ];
}
