/**
 * The tray menu as data: which items it has for a state, and what a click on each does. Pure, so the
 * menu is tested without a bus; status-notifier.ts serves it as com.canonical.dbusmenu.
 */
import { Variant } from './dbus/marshal.js';
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

/** The menu for a state. */
export function buildMenu(st: TrayState, ids: MenuIds): MenuItem {
  const item = (id: number, props: Record<string, Variant>): MenuItem => ({ id, props, children: [] });
  const sep = (id: number) => item(id, { type: s('separator') });
  const tunnels = st.tunnels.map((t) =>
    item(ids.of(t.name), {
      label: s(t.status === 'error' ? `${t.name} (error)` : t.name),
      'toggle-type': s('checkmark'),
      'toggle-state': i(t.enabled ? 1 : 0),
      enabled: b(true),
    }),
  );
  const windowLabel =
    st.window === 'open' ? 'Hide window' : st.window === 'closed' ? 'Show window' : 'Open dashboard';
  return {
    id: MenuId.Root,
    props: { 'children-display': s('submenu') },
    children: [
      item(MenuId.Status, { label: s(st.detail || st.title), enabled: b(false) }),
      sep(MenuId.Sep1),
      item(MenuId.Window, { label: s(windowLabel) }),
      sep(MenuId.Sep2),
      ...(tunnels.length > 0
        ? tunnels
        : [item(MenuId.NoTunnels, { label: s('No tunnels'), enabled: b(false) })]),
      sep(MenuId.Sep3),
      item(MenuId.Quit, { label: s('Quit') }),
    ],
  };
}

/** What a click on a menu item means. */
export type MenuAction =
  | { kind: 'quit' }
  | { kind: 'show' }
  | { kind: 'hide' }
  | { kind: 'toggle'; name: string; enabled: boolean };

/** The action of a click on item `id` in the menu of `st`; undefined for an inert item. */
export function menuAction(id: number, st: TrayState, ids: MenuIds): MenuAction | undefined {
  if (id === MenuId.Quit) return { kind: 'quit' };
  if (id === MenuId.Window) return st.window === 'open' ? { kind: 'hide' } : { kind: 'show' };
  const name = ids.nameOf(id);
  const t = name === undefined ? undefined : st.tunnels.find((x) => x.name === name);
  return t ? { kind: 'toggle', name: t.name, enabled: !t.enabled } : undefined;
}

/** Runs an action through the tray's actions. */
export function runMenuAction(a: MenuAction, actions: TrayActions): void {
  if (a.kind === 'quit') actions.quit();
  else if (a.kind === 'show') actions.showWindow();
  else if (a.kind === 'hide') actions.hideWindow();
  else actions.setTunnelEnabled(a.name, a.enabled);
}
