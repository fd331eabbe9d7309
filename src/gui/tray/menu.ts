/**
 * The tray menu as data: which items it has for a state, and what a click on each does. Pure, so the
 * menu is tested without a bus; status-notifier.ts serves it as com.canonical.dbusmenu.
 */
import { Variant } from '../dbus/marshal.js';
import type { TrayActions, TrayState } from './types.js';

/** Fixed menu item ids; tunnel items get ids from TUNNEL_ID_BASE up, stable per name. */
export const MenuId = {
  Root: 0,
  Status: 1,
  Window: 2,
  NoTunnels: 3,
  Quit: 4,
  Sep1: 5,
  Sep2: 6,
  Sep3: 7,
  CloseWindow: 8,
  Reconnect: 9,
  Retry: 10,
  Pause: 11,
  QuitConfirm: 12,
  QuitWhy: 13,
} as const;
const TUNNEL_ID_BASE = 100;

/** One dbusmenu item: id, properties, children. */
export interface MenuItem {
  id: number;
  props: Record<string, Variant>;
  children: MenuItem[];
}

/** Stable ids for tunnel items: one per name for the life of the tray. */
export class MenuIds {
  #byName = new Map<string, number>();
  #next = TUNNEL_ID_BASE;

  of(name: string): number {
    let id = this.#byName.get(name);
    if (id === undefined) {
      id = this.#next++;
      this.#byName.set(name, id);
    }
    return id;
  }

  nameOf(id: number): string | undefined {
    for (const [name, tid] of this.#byName) if (tid === id) return name;
    return undefined;
  }
}

const s = (v: string) => new Variant('s', v);
const b = (v: boolean) => new Variant('b', v);
const i = (v: number) => new Variant('i', v);

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** The label of a tunnel's item: its name, and what is wrong with it. */
function tunnelLabel(t: TrayState['tunnels'][number]): string {
  if (t.status === 'error') return `${t.name} (refused by the server)`;
  if (t.enabled && t.localDown) return `${t.name} (local service down)`;
  return t.name;
}

/** The menu for a state. */
export function buildMenu(st: TrayState, ids: MenuIds): MenuItem {
  const item = (id: number, props: Record<string, Variant>, children: MenuItem[] = []): MenuItem => ({
    id,
    props,
    children,
  });
  const sep = (id: number) => item(id, { type: s('separator') });
  const tunnels = st.tunnels.map((t) =>
    item(ids.of(t.name), {
      label: s(tunnelLabel(t)),
      'toggle-type': s('checkmark'),
      'toggle-state': i(t.enabled ? 1 : 0),
      enabled: b(true),
    }),
  );
  const windowOpen = st.window === 'open' || st.window === 'minimized';
  const active = st.activeConnections ?? 0;
  const failed = st.tunnels.filter((t) => t.status === 'error').length;
  // With connections open, Quit is a submenu that says what it ends: asking first, tray style.
  const quit =
    active > 0
      ? item(MenuId.Quit, { label: s('Quit…'), 'children-display': s('submenu') }, [
          item(MenuId.QuitWhy, { label: s(`${plural(active, 'connection')} open`), enabled: b(false) }),
          item(MenuId.QuitConfirm, { label: s(`End ${active === 1 ? 'it' : `all ${active}`} and quit`) }),
        ])
      : item(MenuId.Quit, { label: s('Quit') });
  return {
    id: MenuId.Root,
    props: { 'children-display': s('submenu') },
    children: [
      item(MenuId.Status, { label: s(st.detail || st.title), enabled: b(false) }),
      ...(st.canReconnect ? [item(MenuId.Reconnect, { label: s('Reconnect now') })] : []),
      sep(MenuId.Sep1),
      item(MenuId.Window, {
        label: s(st.window === 'minimized' ? 'Show window (minimised)' : 'Show window'),
      }),
      ...(windowOpen ? [item(MenuId.CloseWindow, { label: s('Close window') })] : []),
      sep(MenuId.Sep2),
      ...(tunnels.length > 0
        ? tunnels
        : [item(MenuId.NoTunnels, { label: s('No tunnels'), enabled: b(false) })]),
      ...(failed > 0 ? [item(MenuId.Retry, { label: s(`Retry ${plural(failed, 'refused tunnel')}`) })] : []),
      ...(st.tunnels.length > 0
        ? [item(MenuId.Pause, { label: s(st.paused ? 'Resume all tunnels' : 'Pause all tunnels') })]
        : []),
      sep(MenuId.Sep3),
      quit,
    ],
  };
}

/** What a click on a menu item means. */
export type MenuAction =
  | { kind: 'quit' }
  | { kind: 'show' }
  | { kind: 'hide' }
  | { kind: 'reconnect' }
  | { kind: 'retry' }
  | { kind: 'pause'; paused: boolean }
  | { kind: 'toggle'; name: string; enabled: boolean };

/** The action of a click on item `id` in the menu of `st`; undefined for an inert item. */
export function menuAction(id: number, st: TrayState, ids: MenuIds): MenuAction | undefined {
  switch (id) {
    case MenuId.Quit:
      // With connections open the item is a submenu; only its confirm item quits.
      return (st.activeConnections ?? 0) > 0 ? undefined : { kind: 'quit' };
    case MenuId.QuitConfirm:
      return { kind: 'quit' };
    case MenuId.Window:
      return { kind: 'show' };
    case MenuId.CloseWindow:
      return { kind: 'hide' };
    case MenuId.Reconnect:
      return { kind: 'reconnect' };
    case MenuId.Retry:
      return { kind: 'retry' };
    case MenuId.Pause:
      return { kind: 'pause', paused: !st.paused };
  }
  const name = ids.nameOf(id);
  const t = name === undefined ? undefined : st.tunnels.find((x) => x.name === name);
  return t ? { kind: 'toggle', name: t.name, enabled: !t.enabled } : undefined;
}

/** Runs an action through the tray's actions. */
export function runMenuAction(a: MenuAction, actions: TrayActions): void {
  if (a.kind === 'quit') actions.quit();
  else if (a.kind === 'show') actions.showWindow();
  else if (a.kind === 'hide') actions.hideWindow();
  else if (a.kind === 'reconnect') actions.reconnectNow?.();
  else if (a.kind === 'retry') actions.retryTunnels?.();
  else if (a.kind === 'pause') actions.setPaused?.(a.paused);
  else actions.setTunnelEnabled(a.name, a.enabled);
}
