/**
 * Desktop notifications (org.freedesktop.Notifications over D-Bus) when something needs the user:
 * the connection was lost, the server refused this client, a tunnel was refused, a local service
 * stopped answering. One bubble per subject, replaced rather than stacked, and only on a change:
 * a client that keeps retrying does not notify at every attempt. Off by a preference.
 */
import type { ClientSnapshot } from '../client/index.js';
import { escapeControls } from '../util/escape.js';
import type { Logger } from '../util/logger.js';
import { DBusConnection } from './dbus/connection.js';
import { Variant } from './dbus/marshal.js';

const NOTIFICATIONS = 'org.freedesktop.Notifications';
const NOTIFICATIONS_PATH = '/org/freedesktop/Notifications';
/** Longest body sent (peer text included, escaped): servers truncate anyway; keep it readable. */
const MAX_BODY = 300;

/** One notification to show. */
export interface Notice {
  /** What it is about; a newer notice with the same key replaces the older bubble. */
  key: string;
  summary: string;
  body: string;
  urgency: 'normal' | 'critical';
}

const clip = (s: string) => {
  const e = escapeControls(s);
  return e.length > MAX_BODY ? `${e.slice(0, MAX_BODY - 1)}…` : e;
};

/**
 * What changed between two snapshots that deserves a notification. Pure: the GUI calls it on every
 * state change with the snapshot it last looked at.
 */
export function noticesBetween(prev: ClientSnapshot | undefined, next: ClientSnapshot): Notice[] {
  const out: Notice[] = [];
  const was = prev?.connection.kind;
  const c = next.connection;
  const addr = next.server.address;
  if (c.kind === 'reconnecting' && was === 'connected') {
    out.push({
      key: 'connection',
      summary: 'MiniTCPTunnel: connection lost',
      body: clip(`Lost ${addr} (${c.lastError}); reconnecting. The tunnels come back by themselves.`),
      urgency: 'normal',
    });
  }
  if (c.kind === 'rejected' && was !== 'rejected') {
    const why =
      c.reason === 'unknown_key'
        ? "This client's key is not on the server's allow-list: open the dashboard to copy it for the admin."
        : c.reason === 'server_key_mismatch'
          ? "The server's key is not the pinned one."
          : c.message || c.reason;
    out.push({
      key: 'connection',
      summary: 'MiniTCPTunnel: refused by the server',
      body: clip(`${addr}: ${why}`),
      urgency: 'critical',
    });
  }
  if (c.kind === 'connected' && (was === 'reconnecting' || was === 'rejected')) {
    out.push({
      key: 'connection',
      summary: 'MiniTCPTunnel: connected again',
      body: clip(`Connected to ${addr}.`),
      urgency: 'normal',
    });
  }
  const before = new Map((prev?.tunnels ?? []).map((t) => [t.name, t]));
  for (const t of next.tunnels) {
    const old = before.get(t.name);
    if (t.status === 'error' && old?.status !== 'error') {
      out.push({
        key: `tunnel:${t.name}`,
        summary: `MiniTCPTunnel: tunnel ${t.name} refused`,
        body: clip(t.error ?? 'the server refused to open it'),
        urgency: 'normal',
      });
    }
    if (t.enabled && t.local?.state === 'failing' && old?.local?.state !== 'failing') {
      out.push({
        key: `local:${t.name}`,
        summary: `MiniTCPTunnel: ${t.name}'s local service is down`,
        body: clip(
          `${t.localHost}:${t.localPort} does not answer${t.local.lastError ? ` (${t.local.lastError})` : ''}.`,
        ),
        urgency: 'normal',
      });
    }
  }
  return out;
}

/** Sends notifications to the session's notification server. */
export class Notifier {
  #conn: DBusConnection | undefined;
  #log: Logger;
  #ids = new Map<string, number>();
  #saidNone = false;

  private constructor(conn: DBusConnection | undefined, log: Logger) {
    this.#conn = conn;
    this.#log = log;
  }

  /** Connects to the bus; without one, notify() does nothing (and says so once). */
  static async start(address: string | undefined, log: Logger): Promise<Notifier> {
    if (!address) return new Notifier(undefined, log);
    try {
      return new Notifier(await DBusConnection.connect(address), log);
    } catch (err) {
      log.debug('no session bus for notifications', { error: err as Error });
      return new Notifier(undefined, log);
    }
  }

  /** Shows (or replaces) the bubble for `n.key`. Never throws. */
  async notify(n: Notice): Promise<number | undefined> {
    const conn = this.#conn;
    if (!conn) return undefined;
    try {
      const reply = await conn.call({
        destination: NOTIFICATIONS,
        path: NOTIFICATIONS_PATH,
        interface: NOTIFICATIONS,
        member: 'Notify',
        signature: 'susssasa{sv}i',
        body: [
          'MiniTCPTunnel',
          this.#ids.get(n.key) ?? 0,
          'network-transmit-receive',
          n.summary,
          n.body,
          [],
          {
            urgency: new Variant('y', n.urgency === 'critical' ? 2 : 1),
            'desktop-entry': new Variant('s', 'minitcptunnel'),
          },
          -1,
        ],
      });
      const id = reply.body[0] as number;
      this.#ids.set(n.key, id);
      return id;
    } catch (err) {
      if (!this.#saidNone) {
        this.#saidNone = true;
        this.#log.info('no desktop notification server answered; notifications are off for now', {
          error: err as Error,
        });
      }
      return undefined;
    }
  }

  close(): void {
    this.#conn?.close();
    this.#conn = undefined;
  }
}
