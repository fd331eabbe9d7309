/**
 * A stand-in tray host for tests: it owns org.kde.StatusNotifierWatcher on a private bus, records items
 * that register, and reads and clicks them the way a panel would.
 */
import { DBusConnection } from '../../../../src/gui/dbus/connection.js';
import { Variant } from '../../../../src/gui/dbus/marshal.js';
import type { DBusMessage } from '../../../../src/gui/dbus/message.js';

const WATCHER = 'org.kde.StatusNotifierWatcher';

/** An item as the watcher knows it: where to call it. */
export interface RegisteredItem {
  service: string;
  sender: string;
  destination: string;
  path: string;
}

/** One menu entry from GetLayout, flattened. */
export interface MenuEntry {
  id: number;
  props: Map<string, Variant>;
  label: string;
  children: MenuEntry[];
}

/** Waits for `pred` to hold, re-checking whenever `emitter` fires `event`; bounded by timeoutMs. */
function waitOn<T>(
  subscribe: (wake: () => void) => () => void,
  check: () => T | undefined,
  what: string,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const probe = () => {
      const v = check();
      if (v !== undefined) {
        clearTimeout(timer);
        unsubscribe();
        resolve(v);
      }
    };
    unsubscribe = subscribe(probe);
    probe();
  });
}

export class TestTrayHost {
  readonly conn: DBusConnection;
  readonly items: RegisteredItem[] = [];
  readonly signals: DBusMessage[] = [];
  #wakers = new Set<() => void>();

  private constructor(conn: DBusConnection) {
    this.conn = conn;
    conn.on('signal', (m: DBusMessage) => {
      this.signals.push(m);
      this.#wake();
    });
  }

  #wake(): void {
    for (const w of [...this.#wakers]) w();
  }

  /**
   * Connects and owns the watcher name. The watcher object is exported `exportDelayMs` later, the way
   * a real host can own its name a moment before its object exists.
   */
  static async start(address: string, exportDelayMs = 0): Promise<TestTrayHost> {
    const conn = await DBusConnection.connect(address);
    const host = new TestTrayHost(conn);
    await conn.addMatch("type='signal'");
    const code = await conn.requestName(WATCHER);
    if (code !== 1) throw new Error(`could not own ${WATCHER}: ${code}`);
    const exportIt = () =>
      conn.exportObject('/StatusNotifierWatcher', (m) => {
        if (m.member === 'RegisterStatusNotifierItem') {
          const service = m.body[0] as string;
          const sender = m.sender ?? '';
          const byPath = service.startsWith('/');
          host.items.push({
            service,
            sender,
            destination: byPath ? sender : service,
            path: byPath ? service : '/StatusNotifierItem',
          });
          conn.emitSignal('/StatusNotifierWatcher', WATCHER, 'StatusNotifierItemRegistered', 's', [service]);
          host.#wake();
          return undefined;
        }
        if (m.member === 'RegisterStatusNotifierHost') return undefined;
        if (m.interface === 'org.freedesktop.DBus.Properties' && m.member === 'Get') {
          const props: Record<string, Variant> = {
            IsStatusNotifierHostRegistered: new Variant('b', true),
            ProtocolVersion: new Variant('i', 0),
            RegisteredStatusNotifierItems: new Variant(
              'as',
              host.items.map((i) => i.service),
            ),
          };
          return { signature: 'v', body: [props[m.body[1] as string] ?? new Variant('s', '')] };
        }
        throw new Error(`unexpected ${m.member}`);
      });
    if (exportDelayMs > 0) setTimeout(exportIt, exportDelayMs);
    else exportIt();
    return host;
  }

  /** Resolves once an item registered (optionally one matching `pred`). */
  waitForItem(
    timeoutMs = 10_000,
    pred: (i: RegisteredItem) => boolean = () => true,
  ): Promise<RegisteredItem> {
    return waitOn(
      (wake) => {
        this.#wakers.add(wake);
        return () => this.#wakers.delete(wake);
      },
      () => this.items.find(pred),
      'an item to register',
      timeoutMs,
    );
  }

  /** Resolves with the first signal received after `since` (an index into `signals`) that matches. */
  waitForSignal(pred: (m: DBusMessage) => boolean, since = 0, timeoutMs = 10_000): Promise<DBusMessage> {
    return waitOn(
      (wake) => {
        this.#wakers.add(wake);
        return () => this.#wakers.delete(wake);
      },
      () => this.signals.slice(since).find(pred),
      'a signal',
      timeoutMs,
    );
  }

  async properties(item: RegisteredItem): Promise<Map<string, Variant>> {
    const reply = await this.conn.call({
      destination: item.destination,
      path: item.path,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'GetAll',
      signature: 's',
      body: ['org.kde.StatusNotifierItem'],
    });
    return reply.body[0] as Map<string, Variant>;
  }

  async menu(item: RegisteredItem): Promise<{ revision: number; root: MenuEntry }> {
    const props = await this.properties(item);
    const menuPath = props.get('Menu')?.value as string;
    const reply = await this.conn.call({
      destination: item.destination,
      path: menuPath,
      interface: 'com.canonical.dbusmenu',
      member: 'GetLayout',
      signature: 'iias',
      body: [0, -1, []],
    });
    const [revision, layout] = reply.body as [number, unknown[]];
    const toEntry = (raw: unknown[]): MenuEntry => {
      const [id, props, children] = raw as [number, Map<string, Variant>, Variant<unknown[]>[]];
      return {
        id,
        props,
        label: (props.get('label')?.value as string | undefined) ?? '',
        children: children.map((c) => toEntry(c.value)),
      };
    };
    return { revision, root: toEntry(layout) };
  }

  /** Sends the 'clicked' event a panel sends when the user picks a menu entry. */
  async click(item: RegisteredItem, id: number): Promise<void> {
    const props = await this.properties(item);
    await this.conn.call({
      destination: item.destination,
      path: props.get('Menu')?.value as string,
      interface: 'com.canonical.dbusmenu',
      member: 'Event',
      signature: 'isvu',
      body: [id, 'clicked', new Variant('i', 0), Math.floor(Date.now() / 1000)],
    });
  }

  close(): void {
    this.conn.close();
  }
}

/** Finds a menu entry by label (or label prefix). */
export function findEntry(root: MenuEntry, label: string | RegExp): MenuEntry | undefined {
  const hit = typeof label === 'string' ? root.label === label : label.test(root.label);
  if (hit) return root;
  for (const c of root.children) {
    const found = findEntry(c, label);
    if (found) return found;
  }
  return undefined;
}
