/**
 * The StatusNotifierItem on a private session bus, read and clicked by a test tray host the way a
 * panel does, and cross-checked with GLib's gdbus. Every test has its own bus, tray and host.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { ICON_SIZES, renderIcon } from '../../../src/gui/tray/icons.js';
import { StatusNotifierTray } from '../../../src/gui/tray/status-notifier.js';
import { createLogger } from '../../../src/util/logger.js';
import { recordingActions, SAMPLE_TRAY_STATE as STATE } from '../../gui/tray/tray-fixtures.js';
import { gdbusCall, startPrivateBus } from './lib/private-bus.js';
import { findEntry, type RegisteredItem, TestTrayHost } from './lib/tray-host.js';

interface Rig {
  address: string;
  tray: StatusNotifierTray;
  host: TestTrayHost;
  item: RegisteredItem;
  calls: string[];
  logs: string[];
}

/** A bus, a tray showing STATE and a host that has seen it register; all closed after the test. */
async function rig(t: TestContext, opts: { hostFirst?: boolean; exportDelayMs?: number } = {}): Promise<Rig> {
  const bus = await startPrivateBus();
  t.after(() => bus.close());
  const { calls, actions } = recordingActions();
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', write: (l) => logs.push(l) });
  let host: TestTrayHost | undefined;
  if (opts.hostFirst !== false) host = await TestTrayHost.start(bus.address);
  const tray = await StatusNotifierTray.start(actions, { address: bus.address, log });
  t.after(() => tray.close());
  tray.update(STATE);
  host ??= await TestTrayHost.start(bus.address, opts.exportDelayMs ?? 0);
  const h = host;
  t.after(() => h.close());
  const item = await h.waitForItem(10_000);
  return { address: bus.address, tray, host: h, item, calls, logs };
}

test('registers once a watcher appears, even one slow to export its object', {
  timeout: 30_000,
}, async (t) => {
  const r = await rig(t, { hostFirst: false, exportDelayMs: 300 });
  assert.equal(r.item.service, r.tray.serviceName);
  assert.equal(r.logs.filter((l) => l.includes('no tray host')).length, 1);
});

test('exposes title, status, icon pixmaps, tooltip and menu path', { timeout: 30_000 }, async (t) => {
  const { host, item } = await rig(t);
  const props = await host.properties(item);
  assert.equal(props.get('Title')?.value, 'MiniTCPTunnel: connected');
  assert.equal(props.get('Status')?.value, 'Active');
  assert.equal(props.get('Category')?.value, 'ApplicationStatus');
  assert.equal(props.get('Menu')?.value, '/MenuBar');
  const pixmaps = props.get('IconPixmap')?.value as [number, number, Buffer][];
  assert.deepEqual(
    pixmaps.map(([w, h]) => [w, h]),
    ICON_SIZES.map((s) => [s, s]),
  );
  assert.deepEqual(pixmaps[0]![2], renderIcon('connected', 16)[2]);
  const tip = props.get('ToolTip')?.value as [string, unknown[], string, string];
  assert.equal(tip[3], 'Connected to vps.example.net:9000');
});

test('the menu lists the window item, one checkable item per tunnel, and Quit', {
  timeout: 30_000,
}, async (t) => {
  const { host, item } = await rig(t);
  const { root } = await host.menu(item);
  const labels = root.children.filter((c) => c.props.get('type')?.value !== 'separator').map((c) => c.label);
  assert.deepEqual(labels, [
    'Connected to vps.example.net:9000',
    'Show window',
    'web',
    'db',
    'Pause all tunnels',
    'Quit',
  ]);
  assert.equal(findEntry(root, 'web')!.props.get('toggle-state')?.value, 1);
  assert.equal(findEntry(root, 'db')!.props.get('toggle-state')?.value, 0);
});

test("GLib's gdbus reads the same menu", { timeout: 30_000 }, async (t) => {
  const { address, tray } = await rig(t);
  const stdout = await gdbusCall(address, tray.serviceName, '/MenuBar', 'com.canonical.dbusmenu.GetLayout', [
    '0',
    '-1',
    '[]',
  ]);
  assert.match(stdout, /'label': <'web'>/);
  assert.match(stdout, /'toggle-type': <'checkmark'>/);
  assert.match(stdout, /'label': <'Quit'>/);
});

test('clicks toggle tunnels, show the window and quit', { timeout: 30_000 }, async (t) => {
  const { host, item, calls } = await rig(t);
  const { root } = await host.menu(item);
  await host.click(item, findEntry(root, 'web')!.id);
  await host.click(item, findEntry(root, 'db')!.id);
  await host.click(item, findEntry(root, 'Show window')!.id);
  await host.click(item, findEntry(root, 'Quit')!.id);
  assert.deepEqual(calls, ['web=false', 'db=true', 'show', 'quit']);
});

test('state changes are announced: NewStatus, NewIcon and LayoutUpdated', { timeout: 30_000 }, async (t) => {
  const { host, item, tray } = await rig(t);
  const since = host.signals.length;
  const before = (await host.menu(item)).revision;
  tray.update({ ...STATE, status: 'error', window: 'open', tunnels: [STATE.tunnels[0]!] });
  // Signals from the first update may still be in flight: match the ones this update causes.
  await host.waitForSignal((m) => m.member === 'NewStatus' && m.body[0] === 'NeedsAttention', since);
  await host.waitForSignal((m) => m.member === 'NewIcon', since);
  const layout = await host.waitForSignal(
    (m) => m.member === 'LayoutUpdated' && (m.body[0] as number) > before,
    since,
  );
  const { root, revision } = await host.menu(item);
  assert.equal(revision, layout.body[0]);
  assert.ok(findEntry(root, 'Close window'));
  assert.equal(findEntry(root, 'db'), undefined);
  const props = await host.properties(item);
  const pixmaps = props.get('IconPixmap')!.value as [number, number, Buffer][];
  assert.deepEqual(pixmaps[0]![2], renderIcon('error', 16)[2]);
});
