/**
 * The Linux tray icon: a StatusNotifierItem (freedesktop/KDE spec) with a com.canonical.dbusmenu menu,
 * on the session bus, through our own small D-Bus client (see src/gui/README.md for why).
 *
 * The item registers with org.kde.StatusNotifierWatcher. When no watcher runs (no tray host yet), it
 * says so once and registers as soon as one appears; a watcher that owns its name a moment before its
 * object exists is retried a few times.
 */
import type { Logger } from '../../util/logger.js';
import { DBusConnection, DBusError, type MethodResult } from '../dbus/connection.js';
import { Variant } from '../dbus/marshal.js';
import type { DBusMessage } from '../dbus/message.js';
import { type IconPixmap, iconSet } from './icons.js';
import { buildMenu, MenuIds, type MenuItem, menuAction, runMenuAction } from './menu.js';
import type { Tray, TrayActions, TrayState } from './types.js';

const WATCHER = 'org.kde.StatusNotifierWatcher';
const WATCHER_PATH = '/StatusNotifierWatcher';
const ITEM_IFACE = 'org.kde.StatusNotifierItem';
const MENU_IFACE = 'com.canonical.dbusmenu';
const PROPS_IFACE = 'org.freedesktop.DBus.Properties';
const INTROSPECT_IFACE = 'org.freedesktop.DBus.Introspectable';
/** Object paths, as most implementations use them. */
export const ITEM_PATH = '/StatusNotifierItem';
export const MENU_PATH = '/MenuBar';
/** Registration attempts after the watcher's name appears, and the first delay between them. */
const REGISTER_ATTEMPTS = 8;
const REGISTER_FIRST_DELAY_MS = 100;

const s = (v: string) => new Variant('s', v);
const b = (v: boolean) => new Variant('b', v);
const i = (v: number) => new Variant('i', v);

/** A StatusNotifierItem on a D-Bus connection. */
export class StatusNotifierTray implements Tray {
  readonly kind = 'status-notifier';
  /** The well-known name the item owns, e.g. org.kde.StatusNotifierItem-1234-1. */
  readonly serviceName: string;
  #conn: DBusConnection;
  #actions: TrayActions;
  #log: Logger;
  #state: TrayState = {
    status: 'connecting',
    title: 'MiniTCPTunnel',
    detail: '',
    tunnels: [],
    window: 'closed',
  };
  #revision = 1;
  #menu: MenuItem;
  #ids = new MenuIds();
  #registered = false;
  #registering = false;
  #saidNoHost = false;
  #closed = false;

  private constructor(conn: DBusConnection, serviceName: string, actions: TrayActions, log: Logger) {
    this.#conn = conn;
    this.serviceName = serviceName;
    this.#actions = actions;
    this.#log = log;
    this.#menu = this.#buildMenu();
  }

  /** Connects to the bus, exports the item and its menu, and registers with the watcher. */
  static async start(
    actions: TrayActions,
    opts: { address: string; log: Logger },
  ): Promise<StatusNotifierTray> {
    const conn = await DBusConnection.connect(opts.address);
    const name = `org.kde.StatusNotifierItem-${process.pid}-1`;
    const code = await conn.requestName(name);
    if (code !== 1 && code !== 4) {
      conn.close();
      throw new Error(`could not own the bus name ${name} (answer ${code})`);
    }
    const tray = new StatusNotifierTray(conn, name, actions, opts.log);
    conn.exportObject(ITEM_PATH, (m) => tray.#onItemCall(m));
    conn.exportObject(MENU_PATH, (m) => tray.#onMenuCall(m));
    conn.on('signal', (m: DBusMessage) => {
      if (m.member === 'NameOwnerChanged' && m.body[0] === WATCHER) {
        const owner = m.body[2] as string;
        if (owner === '') {
          tray.#registered = false;
          tray.#log.info('the tray host went away; the icon comes back when it returns');
        } else {
          void tray.#register();
        }
      }
    });
    conn.on('close', (err: Error | undefined) => {
      if (!tray.#closed)
        tray.#log.warn('lost the D-Bus session bus; no tray icon from now on', { error: err });
    });
    await conn.addMatch(
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${WATCHER}'`,
    );
    await tray.#register();
    return tray;
  }

  /** True once a watcher accepted the item. */
  get registered(): boolean {
    return this.#registered;
  }

  async #register(): Promise<void> {
    if (this.#registering || this.#closed) return;
    this.#registering = true;
    try {
      let delay = REGISTER_FIRST_DELAY_MS;
      for (let attempt = 1; attempt <= REGISTER_ATTEMPTS && !this.#closed; attempt++) {
        if ((await this.#conn.nameOwner(WATCHER)) === undefined) {
          if (!this.#saidNoHost) {
            this.#saidNoHost = true;
            this.#log.info(
              'no tray host on the session bus (org.kde.StatusNotifierWatcher); the icon appears when one starts',
            );
          }
          return;
        }
        try {
          await this.#conn.call({
            destination: WATCHER,
            path: WATCHER_PATH,
            interface: WATCHER,
            member: 'RegisterStatusNotifierItem',
            signature: 's',
            body: [this.serviceName],
          });
          this.#registered = true;
          this.#log.debug('tray icon registered', { service: this.serviceName });
          return;
        } catch (err) {
          // The watcher may own its name before its object exists: try again shortly.
          if (attempt === REGISTER_ATTEMPTS) {
            this.#log.warn('the tray host refused the icon', { error: err as Error });
            return;
          }
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 2000);
        }
      }
    } catch (err) {
      if (!this.#closed) this.#log.warn('could not register the tray icon', { error: err as Error });
    } finally {
      this.#registering = false;
    }
  }

  update(state: TrayState): void {
    if (this.#closed) return;
    const old = this.#state;
    this.#state = state;
    const emit = (member: string, sig = '', body: unknown[] = []) =>
      this.#conn.emitSignal(ITEM_PATH, ITEM_IFACE, member, sig, body);
    if (old.title !== state.title) emit('NewTitle');
    if (old.status !== state.status) {
      emit('NewIcon');
      emit('NewAttentionIcon');
      emit('NewStatus', 's', [this.#sniStatus()]);
    }
    if (old.title !== state.title || old.detail !== state.detail) emit('NewToolTip');
    const menu = this.#buildMenu();
    if (JSON.stringify(menu) !== JSON.stringify(this.#menu)) {
      this.#menu = menu;
      this.#revision++;
      this.#conn.emitSignal(MENU_PATH, MENU_IFACE, 'LayoutUpdated', 'ui', [this.#revision, 0]);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  #sniStatus(): string {
    return this.#state.status === 'error' ? 'NeedsAttention' : 'Active';
  }

  #itemProperties(): Record<string, Variant> {
    const st = this.#state;
    const icon: IconPixmap[] = iconSet(st.status);
    return {
      Category: s('ApplicationStatus'),
      Id: s('minitcptunnel'),
      Title: s(st.title),
      Status: s(this.#sniStatus()),
      WindowId: i(0),
      IconName: s(''),
      IconPixmap: new Variant('a(iiay)', icon),
      OverlayIconName: s(''),
      OverlayIconPixmap: new Variant('a(iiay)', []),
      AttentionIconName: s(''),
      AttentionIconPixmap: new Variant('a(iiay)', icon),
      AttentionMovieName: s(''),
      ToolTip: new Variant('(sa(iiay)ss)', ['', [], st.title, st.detail]),
      ItemIsMenu: b(false),
      Menu: new Variant('o', MENU_PATH),
    };
  }

  #menuProperties(): Record<string, Variant> {
    return {
      Version: new Variant('u', 3),
      TextDirection: s('ltr'),
      Status: s(this.#state.status === 'error' ? 'notice' : 'normal'),
      IconThemePath: new Variant('as', []),
    };
  }

  #buildMenu(): MenuItem {
    return buildMenu(this.#state, this.#ids);
  }

  #find(id: number, from: MenuItem = this.#menu): MenuItem | undefined {
    if (from.id === id) return from;
    for (const c of from.children) {
      const hit = this.#find(id, c);
      if (hit) return hit;
    }
    return undefined;
  }

  #layout(item: MenuItem, depth: number, names: string[]): unknown[] {
    const children =
      depth === 0
        ? []
        : item.children.map((c) => new Variant('(ia{sv}av)', this.#layout(c, depth - 1, names)));
    return [item.id, pickProps(item.props, names), children];
  }

  #clicked(id: number): void {
    const action = menuAction(id, this.#state, this.#ids);
    // After the reply is on its way: an action such as Quit closes this very connection.
    if (action) setImmediate(() => runMenuAction(action, this.#actions));
  }

  #onItemCall(m: DBusMessage): MethodResult {
    if (m.interface === PROPS_IFACE) return properties(m, ITEM_IFACE, this.#itemProperties());
    if (m.interface === INTROSPECT_IFACE && m.member === 'Introspect') {
      return { signature: 's', body: [ITEM_INTROSPECTION] };
    }
    switch (m.member) {
      case 'Activate':
        // A left click: bring the dashboard up (a second click does not close it).
        setImmediate(() => this.#actions.showWindow());
        return undefined;
      case 'SecondaryActivate':
      case 'Scroll':
        return undefined;
      case 'ContextMenu':
        // We export a dbusmenu, so the host draws the menu itself; nothing to do here.
        return undefined;
    }
    throw unknownMethod(m);
  }

  #onMenuCall(m: DBusMessage): MethodResult {
    if (m.interface === PROPS_IFACE) return properties(m, MENU_IFACE, this.#menuProperties());
    if (m.interface === INTROSPECT_IFACE && m.member === 'Introspect') {
      return { signature: 's', body: [MENU_INTROSPECTION] };
    }
    switch (m.member) {
      case 'GetLayout': {
        const [parentId, depth, names] = m.body as [number, number, string[]];
        const parent = this.#find(parentId);
        if (!parent)
          throw new DBusError('org.freedesktop.DBus.Error.InvalidArgs', `no menu item ${parentId}`);
        return {
          signature: 'u(ia{sv}av)',
          body: [this.#revision, this.#layout(parent, depth < 0 ? 64 : depth, names)],
        };
      }
      case 'GetGroupProperties': {
        const [ids, names] = m.body as [number[], string[]];
        const wanted = ids.length === 0 ? allItems(this.#menu) : ids.map((id) => this.#find(id));
        const rows = wanted
          .filter((x): x is MenuItem => x !== undefined)
          .map((x) => [x.id, pickProps(x.props, names)]);
        return { signature: 'a(ia{sv})', body: [rows] };
      }
      case 'GetProperty': {
        const [id, name] = m.body as [number, string];
        const value = this.#find(id)?.props[name];
        if (!value)
          throw new DBusError('org.freedesktop.DBus.Error.InvalidArgs', `no property ${name} on item ${id}`);
        return { signature: 'v', body: [value] };
      }
      case 'Event': {
        const [id, eventId] = m.body as [number, string];
        if (eventId === 'clicked') this.#clicked(id);
        return undefined;
      }
      case 'EventGroup': {
        const [events] = m.body as [[number, string, Variant, number][]];
        const missing: number[] = [];
        for (const [id, eventId] of events) {
          if (!this.#find(id)) missing.push(id);
          else if (eventId === 'clicked') this.#clicked(id);
        }
        return { signature: 'ai', body: [missing] };
      }
      case 'AboutToShow':
        return { signature: 'b', body: [false] };
      case 'AboutToShowGroup':
        return { signature: 'aiai', body: [[], []] };
    }
    throw unknownMethod(m);
  }
}

function allItems(item: MenuItem): MenuItem[] {
  return [item, ...item.children.flatMap(allItems)];
}

function pickProps(props: Record<string, Variant>, names: string[]): Record<string, Variant> {
  if (names.length === 0) return props;
  const out: Record<string, Variant> = {};
  for (const n of names) if (props[n] !== undefined) out[n] = props[n];
  return out;
}

function unknownMethod(m: DBusMessage): DBusError {
  return new DBusError('org.freedesktop.DBus.Error.UnknownMethod', `no method ${m.interface}.${m.member}`);
}

/** org.freedesktop.DBus.Properties over a fixed set of read-only properties. */
function properties(m: DBusMessage, iface: string, props: Record<string, Variant>): MethodResult {
  const asked = m.body[0] as string;
  if (asked !== iface && asked !== '') {
    if (m.member === 'GetAll') return { signature: 'a{sv}', body: [{}] };
    throw new DBusError('org.freedesktop.DBus.Error.UnknownInterface', `no interface ${asked}`);
  }
  switch (m.member) {
    case 'Get': {
      const v = props[m.body[1] as string];
      if (!v)
        throw new DBusError('org.freedesktop.DBus.Error.UnknownProperty', `no property ${String(m.body[1])}`);
      return { signature: 'v', body: [v] };
    }
    case 'GetAll':
      return { signature: 'a{sv}', body: [props] };
    case 'Set':
      throw new DBusError('org.freedesktop.DBus.Error.PropertyReadOnly', 'these properties are read-only');
  }
  throw unknownMethod(m);
}

const PROPS_XML = `<interface name="org.freedesktop.DBus.Properties">
<method name="Get"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="out"/></method>
<method name="GetAll"><arg type="s" direction="in"/><arg type="a{sv}" direction="out"/></method>
<method name="Set"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="in"/></method>
</interface>
<interface name="org.freedesktop.DBus.Introspectable"><method name="Introspect"><arg type="s" direction="out"/></method></interface>`;

const ITEM_INTROSPECTION = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node><interface name="org.kde.StatusNotifierItem">
<property name="Category" type="s" access="read"/><property name="Id" type="s" access="read"/>
<property name="Title" type="s" access="read"/><property name="Status" type="s" access="read"/>
<property name="WindowId" type="i" access="read"/><property name="IconName" type="s" access="read"/>
<property name="IconPixmap" type="a(iiay)" access="read"/><property name="OverlayIconName" type="s" access="read"/>
<property name="OverlayIconPixmap" type="a(iiay)" access="read"/><property name="AttentionIconName" type="s" access="read"/>
<property name="AttentionIconPixmap" type="a(iiay)" access="read"/><property name="AttentionMovieName" type="s" access="read"/>
<property name="ToolTip" type="(sa(iiay)ss)" access="read"/><property name="ItemIsMenu" type="b" access="read"/>
<property name="Menu" type="o" access="read"/>
<method name="ContextMenu"><arg name="x" type="i" direction="in"/><arg name="y" type="i" direction="in"/></method>
<method name="Activate"><arg name="x" type="i" direction="in"/><arg name="y" type="i" direction="in"/></method>
<method name="SecondaryActivate"><arg name="x" type="i" direction="in"/><arg name="y" type="i" direction="in"/></method>
<method name="Scroll"><arg name="delta" type="i" direction="in"/><arg name="orientation" type="s" direction="in"/></method>
<signal name="NewTitle"/><signal name="NewIcon"/><signal name="NewAttentionIcon"/><signal name="NewOverlayIcon"/>
<signal name="NewToolTip"/><signal name="NewStatus"><arg name="status" type="s"/></signal>
</interface>${PROPS_XML}</node>`;

const MENU_INTROSPECTION = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node><interface name="com.canonical.dbusmenu">
<property name="Version" type="u" access="read"/><property name="TextDirection" type="s" access="read"/>
<property name="Status" type="s" access="read"/><property name="IconThemePath" type="as" access="read"/>
<method name="GetLayout"><arg type="i" direction="in"/><arg type="i" direction="in"/><arg type="as" direction="in"/>
<arg type="u" direction="out"/><arg type="(ia{sv}av)" direction="out"/></method>
<method name="GetGroupProperties"><arg type="ai" direction="in"/><arg type="as" direction="in"/><arg type="a(ia{sv})" direction="out"/></method>
<method name="GetProperty"><arg type="i" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="out"/></method>
<method name="Event"><arg type="i" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="in"/><arg type="u" direction="in"/></method>
<method name="EventGroup"><arg type="a(isvu)" direction="in"/><arg type="ai" direction="out"/></method>
<method name="AboutToShow"><arg type="i" direction="in"/><arg type="b" direction="out"/></method>
<method name="AboutToShowGroup"><arg type="ai" direction="in"/><arg type="ai" direction="out"/><arg type="ai" direction="out"/></method>
<signal name="ItemsPropertiesUpdated"><arg type="a(ia{sv})"/><arg type="a(ias)"/></signal>
<signal name="LayoutUpdated"><arg type="u"/><arg type="i"/></signal>
<signal name="ItemActivationRequested"><arg type="i"/><arg type="u"/></signal>
</interface>${PROPS_XML}</node>`;
