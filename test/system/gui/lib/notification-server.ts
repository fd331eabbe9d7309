/** A stand-in notification server: owns org.freedesktop.Notifications on a bus and records each Notify. */
import { DBusConnection } from '../../../../src/gui/dbus/connection.js';
import type { Variant } from '../../../../src/gui/dbus/marshal.js';

export interface ShownNotice {
  app: string;
  replaces: number;
  summary: string;
  body: string;
  urgency: number | undefined;
  id: number;
}

export class TestNotificationServer {
  readonly shown: ShownNotice[] = [];
  #conn: DBusConnection;
  #wakers = new Set<() => void>();

  private constructor(conn: DBusConnection) {
    this.#conn = conn;
  }

  static async start(address: string): Promise<TestNotificationServer> {
    const conn = await DBusConnection.connect(address);
    const server = new TestNotificationServer(conn);
    if ((await conn.requestName('org.freedesktop.Notifications')) !== 1)
      throw new Error('could not own the name');
    let next = 1;
    conn.exportObject('/org/freedesktop/Notifications', (m) => {
      if (m.member === 'Notify') {
        const [app, replaces, , summary, body, , hints] = m.body as [
          string,
          number,
          string,
          string,
          string,
          string[],
          Map<string, Variant>,
        ];
        const id = replaces > 0 ? replaces : next++;
        server.shown.push({
          app,
          replaces,
          summary,
          body,
          urgency: hints.get('urgency')?.value as number | undefined,
          id,
        });
        for (const w of [...server.#wakers]) w();
        return { signature: 'u', body: [id] };
      }
      if (m.member === 'GetCapabilities') return { signature: 'as', body: [['body']] };
      if (m.member === 'GetServerInformation')
        return { signature: 'ssss', body: ['test', 'mtt', '1', '1.2'] };
      throw new Error(`unexpected ${m.member}`);
    });
    return server;
  }

  /** Resolves with the first notice (from index `since`) matching `pred`; rejects after timeoutMs. */
  waitFor(pred: (n: ShownNotice) => boolean, since = 0, timeoutMs = 15_000): Promise<ShownNotice> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.shown.slice(since).find(pred);
        if (!hit) return;
        clearTimeout(timer);
        this.#wakers.delete(check);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        this.#wakers.delete(check);
        reject(new Error(`no matching notification in ${timeoutMs} ms; got ${JSON.stringify(this.shown)}`));
      }, timeoutMs);
      this.#wakers.add(check);
      check();
    });
  }

  close(): void {
    this.#conn.close();
  }
}
