/** The tray without a bus: icons, the snapshot-to-tray mapping, the menu model, the no-tray fallback. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Variant } from '../../../src/gui/dbus/marshal.js';
import { ICON_SIZES, renderIcon } from '../../../src/gui/tray/icons.js';
import { buildMenu, MenuId, MenuIds, menuAction, runMenuAction } from '../../../src/gui/tray/menu.js';
import { createTray, type TrayState, trayStateFromSnapshot } from '../../../src/gui/tray/tray.js';
import { createLogger } from '../../../src/util/logger.js';
import { FakeClient } from '../fake-client.js';
import { recordingActions, SAMPLE_TRAY_STATE as STATE } from './tray-fixtures.js';

function recordingLog() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }) };
}

const label = (v: Variant | undefined) => (v as Variant<string> | undefined)?.value;

test('icons are ARGB32 in network byte order, transparent corners, coloured by state', () => {
  for (const size of ICON_SIZES) {
    const [w, h, data] = renderIcon('connected', size);
    assert.equal(w, size);
    assert.equal(h, size);
    assert.equal(data.length, size * size * 4);
    assert.equal(data[0], 0, 'corner alpha is 0');
  }
  const px = (status: 'connected' | 'error' | 'reconnecting', x: number, y: number) => {
    const [size, , data] = renderIcon(status, 32);
    const i = (y * size + x) * 4;
    return [...data.subarray(i, i + 4)];
  };
  // A point inside the disc, away from the arrows: opaque and in the status colour.
  const [a, r, g] = px('connected', 16, 4);
  assert.equal(a, 255);
  assert.ok(g! > r!, 'connected is green');
  const [, r2, g2] = px('error', 16, 4);
  assert.ok(r2! > g2!, 'error is red');
  assert.notDeepEqual(px('reconnecting', 16, 4), px('connected', 16, 4));
  // On an arrow shaft: white.
  assert.deepEqual(px('connected', 16, 12).slice(1), [255, 255, 255]);
});

test('trayStateFromSnapshot maps connection and tunnels', () => {
  const fake = new FakeClient();
  fake.add({ name: 'web', remotePort: 8080, localHost: '127.0.0.1', localPort: 3000 });
  let s = trayStateFromSnapshot(fake.snapshot(), 'open');
  assert.equal(s.status, 'connected');
  assert.deepEqual(s.tunnels, [{ name: 'web', enabled: true, status: 'active' }]);
  fake.patch('web', { status: 'error', error: 'port not allowed' });
  assert.equal(trayStateFromSnapshot(fake.snapshot(), 'open').status, 'error');
  fake.setConnection({
    kind: 'reconnecting',
    attempt: 2,
    nextTryAt: Date.now() + 1000,
    lastError: 'ECONNREFUSED',
  });
  s = trayStateFromSnapshot(fake.snapshot(), 'closed');
  assert.equal(s.status, 'reconnecting');
  assert.match(s.detail, /ECONNREFUSED/);
});

test('without a bus or on another platform the tray says so once and does nothing', async () => {
  const { actions } = recordingActions();
  const a = recordingLog();
  const none = await createTray(actions, {
    log: a.log,
    busAddress: 'unix:path=/nonexistent/bus',
    platform: 'linux',
  });
  assert.equal(none.kind, 'none');
  none.update(STATE);
  await none.close();
  assert.equal(a.lines.length, 1);
  assert.match(a.lines[0]!, /without a tray icon/);
  const b = recordingLog();
  assert.equal((await createTray(actions, { log: b.log, platform: 'win32' })).kind, 'none');
  assert.match(b.lines.join('\n'), /no tray icon on this platform/);
});

test('the menu: status line, window item, one checkable item per tunnel, Quit; clicks map to actions', () => {
  const ids = new MenuIds();
  const menu = buildMenu(STATE, ids);
  const items = menu.children.filter((c) => label(c.props.type) !== 'separator');
  assert.deepEqual(
    items.map((c) => label(c.props.label)),
    ['Connected to vps.example.net:9000', 'Show window', 'web', 'db', 'Pause all tunnels', 'Quit'],
  );
  const web = items[2]!;
  assert.equal(label(web.props['toggle-type']), 'checkmark');
  assert.equal((web.props['toggle-state'] as Variant<number>).value, 1);
  assert.deepEqual(menuAction(web.id, STATE, ids), { kind: 'toggle', name: 'web', enabled: false });
  assert.deepEqual(menuAction(items[3]!.id, STATE, ids), { kind: 'toggle', name: 'db', enabled: true });
  assert.deepEqual(menuAction(MenuId.Window, STATE, ids), { kind: 'show' });
  assert.deepEqual(menuAction(MenuId.Window, { ...STATE, window: 'open' }, ids), { kind: 'show' });
  assert.deepEqual(menuAction(MenuId.CloseWindow, { ...STATE, window: 'open' }, ids), { kind: 'hide' });
  assert.deepEqual(menuAction(MenuId.Quit, STATE, ids), { kind: 'quit' });
  assert.equal(menuAction(MenuId.Status, STATE, ids), undefined);
  // Ids stay with their tunnel when the list changes.
  const again = buildMenu({ ...STATE, tunnels: [STATE.tunnels[1]!] }, ids);
  assert.equal(again.children.find((c) => label(c.props.label) === 'db')!.id, items[3]!.id);
});

test('with connections open, Quit is a submenu that says what it ends; only its confirm item quits', () => {
  const ids = new MenuIds();
  const st: TrayState = { ...STATE, activeConnections: 3 };
  const quit = buildMenu(st, ids).children.at(-1)!;
  assert.equal(label(quit.props.label), 'Quit…');
  assert.deepEqual(
    quit.children.map((c) => label(c.props.label)),
    ['3 connections open', 'End all 3 and quit'],
  );
  assert.equal(menuAction(MenuId.Quit, st, ids), undefined);
  assert.deepEqual(menuAction(MenuId.QuitConfirm, st, ids), { kind: 'quit' });
  const { calls, actions } = recordingActions();
  runMenuAction({ kind: 'quit' }, actions);
  assert.deepEqual(calls, ['quit']);
});

test('Reconnect now, Retry and Pause appear when they apply; a dead local service is named', () => {
  const fake = new FakeClient();
  fake.add({ name: 'web', remotePort: 8080, localPort: 3000 });
  fake.add({ name: 'db', remotePort: 15432, localPort: 5432 });
  fake.patch('web', { local: { state: 'failing', lastError: 'ECONNREFUSED', since: Date.now() } });
  fake.patch('db', { status: 'error', error: 'port 15432 is not allowed' });
  fake.setConnection({
    kind: 'reconnecting',
    attempt: 2,
    nextTryAt: Date.now() + 5000,
    lastError: 'x\x1b[2J',
  });
  const st = trayStateFromSnapshot(fake.snapshot(), 'closed');
  assert.doesNotMatch(st.detail, /\x1b/, 'peer text is escaped');
  assert.equal(st.canReconnect, true);
  const ids = new MenuIds();
  const labels = buildMenu(st, ids)
    .children.map((c) => label(c.props.label))
    .filter((l) => l !== undefined);
  assert.ok(labels.includes('Reconnect now'));
  assert.ok(labels.includes('web (local service down)'));
  assert.ok(labels.includes('db (refused by the server)'));
  assert.ok(labels.includes('Retry 1 refused tunnel'));
  assert.deepEqual(menuAction(MenuId.Retry, st, ids), { kind: 'retry' });
  assert.deepEqual(menuAction(MenuId.Pause, st, ids), { kind: 'pause', paused: true });
  assert.deepEqual(menuAction(MenuId.Pause, { ...st, paused: true }, ids), { kind: 'pause', paused: false });
  fake.setConnection({ kind: 'connected', serverFingerprint: 'SHA256:x', since: Date.now() });
  const connected = trayStateFromSnapshot(fake.snapshot(), 'closed');
  assert.equal(connected.status, 'error', 'a dead local service turns the icon to a problem');
  assert.match(connected.title, /1 tunnel refused, 1 local service down/);
  assert.equal(connected.canReconnect, false);
});

test('icons differ by shape, not only colour', () => {
  // The white glyph of each state, as a mask: where the pixel is (nearly) white.
  const mask = (status: Parameters<typeof renderIcon>[0]) => {
    const [, , data] = renderIcon(status, 32);
    const out: number[] = [];
    for (let i = 0; i < data.length; i += 4) out.push(data[i + 1]! > 240 && data[i + 2]! > 240 ? 1 : 0);
    return out.join('');
  };
  const shapes = new Set(['connected', 'connecting', 'error', 'stopped'].map((s) => mask(s as 'connected')));
  assert.equal(shapes.size, 4);
  assert.equal(mask('connecting'), mask('reconnecting'));
});
