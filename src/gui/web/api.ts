/** The web app's side of the dashboard API: the pushed state stream and the calls. */
import { useEffect, useState } from 'preact/hooks';
import type { TunnelConfig } from '../../config/index.js';
import type { ApiError, DashboardUpdate, GuiPreferences, GuiSettings } from '../dashboard-types.js';

/** How the page's own link to mtt is doing: 'quit' when mtt said it is stopping. */
export type LinkState = 'connecting' | 'open' | 'lost' | 'closed' | 'quit';

/** The latest pushed state, when it arrived (page clock), and the link's health. */
export interface DashboardFeed {
  update: DashboardUpdate | undefined;
  receivedAt: number;
  link: LinkState;
}

/** Subscribes to /api/events (Server-Sent Events); the browser reconnects by itself. */
export function useDashboardFeed(): DashboardFeed {
  const [feed, setFeed] = useState<DashboardFeed>({ update: undefined, receivedAt: 0, link: 'connecting' });
  useEffect(() => {
    let quit = false;
    const source = new EventSource('/api/events');
    source.addEventListener('state', (ev) => {
      const update = JSON.parse((ev as MessageEvent<string>).data) as DashboardUpdate;
      quit = false;
      setFeed({ update, receivedAt: Date.now(), link: 'open' });
    });
    source.addEventListener('quit', () => {
      quit = true;
      setFeed((f) => ({ ...f, link: 'quit' }));
    });
    source.addEventListener('error', () => {
      // CLOSED means the browser gave up (e.g. 401 after mtt restarted with a new token).
      const link: LinkState = quit ? 'quit' : source.readyState === EventSource.CLOSED ? 'closed' : 'lost';
      setFeed((f) => ({ ...f, link }));
    });
    return () => source.close();
  }, []);
  return feed;
}

/** A refused API call, with the fields the server named (if any). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: ApiError['field'],
    readonly fields?: ApiError['fields'],
  ) {
    super(message);
  }
}

async function send(method: string, path: string, body?: unknown): Promise<void> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiFailure(0, 'mtt cannot be reached');
  }
  if (res.ok) return;
  let err: ApiError = { error: `${res.status} ${res.statusText}` };
  try {
    err = (await res.json()) as ApiError;
  } catch {
    // not JSON: keep the status line
  }
  throw new ApiFailure(res.status, err.error, err.field, err.fields);
}

const tunnelPath = (name: string) => `/api/tunnels/${encodeURIComponent(name)}`;

/** The calls the page makes; each rejects with an ApiFailure. */
export const api = {
  addTunnel: (t: TunnelConfig) => send('POST', '/api/tunnels', t),
  updateTunnel: (name: string, t: TunnelConfig) => send('PUT', tunnelPath(name), t),
  removeTunnel: (name: string) => send('DELETE', tunnelPath(name)),
  setEnabled: (name: string, enabled: boolean) => send('PUT', `${tunnelPath(name)}/enabled`, { enabled }),
  retry: (name: string) => send('POST', `${tunnelPath(name)}/retry`),
  reconnect: () => send('POST', '/api/reconnect'),
  setPaused: (paused: boolean) => send('PUT', '/api/paused', { paused }),
  quit: () => send('POST', '/api/quit'),
  updateSettings: (s: Partial<GuiSettings>) => send('PUT', '/api/settings', s),
  setPreferences: (p: Partial<GuiPreferences>) => send('PUT', '/api/preferences', p),
};
