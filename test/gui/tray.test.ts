import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ICON_SIZES, renderIcon } from '../../src/gui/tray/icons.js';
import { StatusNotifierTray } from '../../src/gui/tray/status-notifier.js';
import {
  createTray,
  type TrayActions,
  type TrayState,
  trayStateFromSnapshot,
} from '../../src/gui/tray/tray.js';
import { createLogger } from '../../src/util/logger.js';
import { FakeClient } from './fake-client.js';
import { type PrivateBus, startPrivateBus } from './private-bus.js';
import { findEntry, TestTrayHost } from './tray-host.js';

const run = promisify(execFile);
/** The GLib cross-check needs gdbus (Debian: libglib2.0-bin); without it, say so instead of failing. */

function recordingLog() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }) };
}

function recordingActions() {
  const calls: string[] = [];
  const actions: TrayActions = {
    showWindow: () => calls.push('show'),
    hideWindow: () => calls.push('hide'),
    setTunnelEnabled: (name, enabled) => calls.push(`${name}=${enabled}`),
    quit: () => calls.push('quit'),
  };
  return { calls, actions };
}

const STATE: TrayState = {
  status: 'connected',
  title: 'MiniTCPTunnel: connected',
  detail: 'Connected to vps.example.net:9000',
  tunnels: [
    { name: 'web', enabled: true, status: 'active' },
    { name: 'db', enabled: false, status: 'disabled' },
  ],
  window: 'closed',
};

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

describe('StatusNotifierItem on a private session bus', () => {
  let bus: PrivateBus;
  let tray: StatusNotifierTray;
  let host: TestTrayHost;
  const { calls, actions } = recordingActions();
  const logs = recordingLog();

  before(async () => {
    bus = await startPrivateBus();
  });
  after(async () => {
    await tray?.close();
    host?.close();
    await bus?.close();
  });

  test('registers once a watcher appears, even one slow to export its object', async () => {
    tray = await StatusNotifierTray.start(actions, { address: bus.address, log: logs.log });
    tray.update(STATE);
    assert.equal(tray.registered, false);
    assert.equal(logs.lines.filter((l) => l.includes('no tray host')).length, 1);
    // The watcher owns its name 300 ms before its object exists: the item must retry.
    host = await TestTrayHost.start(bus.address, 300);
    const item = await host.waitForItem(10_000);
    assert.equal(item.service, tray.serviceName);
  });

  test('exposes title, status, icon pixmaps, tooltip and menu path', async () => {
    const item = host.items[0]!;
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

  test('the menu lists the window item, one checkable item per tunnel, and Quit', async () => {
    const { root } = await host.menu(host.items[0]!);
    const labels = root.children
      .filter((c) => c.props.get('type')?.value !== 'separator')
      .map((c) => c.label);
    assert.deepEqual(labels, ['Connected to vps.example.net:9000', 'Show window', 'web', 'db', 'Quit']);
    const web = findEntry(root, 'web')!;
    const db = findEntry(root, 'db')!;
    assert.equal(web.props.get('toggle-type')?.value, 'checkmark');
    assert.equal(web.props.get('toggle-state')?.value, 1);
    assert.equal(db.props.get('toggle-state')?.value, 0);
  });

  test("GLib's gdbus reads the same menu", async () => {
    const { stdout } = await run(
      'gdbus',
      [
        'call',
        '--address',
        bus.address,
        '--dest',
        tray.serviceName,
        '--object-path',
        '/MenuBar',
        '--method',
        'com.canonical.dbusmenu.GetLayout',
        '--',
        '0',
        '-1',
        '[]',
      ],
      { timeout: 10_000 },
    );
    assert.match(stdout, /'label': <'web'>/);
    assert.match(stdout, /'toggle-type': <'checkmark'>/);
    assert.match(stdout, /'label': <'Quit'>/);
  });

  test('clicks toggle tunnels, show the window and quit', async () => {
    const item = host.items[0]!;
    const { root } = await host.menu(item);
    await host.click(item, findEntry(root, 'web')!.id);
    await host.click(item, findEntry(root, 'db')!.id);
    await host.click(item, findEntry(root, 'Show window')!.id);
    await host.click(item, findEntry(root, 'Quit')!.id);
    assert.deepEqual(calls, ['web=false', 'db=true', 'show', 'quit']);
  });

  test('state changes are announced: NewStatus, NewIcon and LayoutUpdated', async () => {
    const item = host.items[0]!;
    const since = host.signals.length;
    const before = (await host.menu(item)).revision;
    tray.update({ ...STATE, status: 'error', window: 'open', tunnels: [STATE.tunnels[0]!] });
    const status = await host.waitForSignal((m) => m.member === 'NewStatus', since);
    assert.deepEqual(status.body, ['NeedsAttention']);
    await host.waitForSignal((m) => m.member === 'NewIcon', since);
    const layout = await host.waitForSignal((m) => m.member === 'LayoutUpdated', since);
    assert.ok((layout.body[0] as number) > before);
    const { root, revision } = await host.menu(item);
    assert.equal(revision, layout.body[0]);
    assert.ok(findEntry(root, 'Hide window'));
    assert.equal(findEntry(root, 'db'), undefined);
    const props = await host.properties(item);
    const pixmaps = props.get('IconPixmap')!.value as [number, number, Buffer][];
    assert.deepEqual(pixmaps[0]![2], renderIcon('error', 16)[2]);
  });
});
