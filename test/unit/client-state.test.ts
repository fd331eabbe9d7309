/** TunnelManager and StateStore on their own. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StateStore } from '../../src/client/state-store.js';
import { type ManagedTunnel, TunnelManager } from '../../src/client/tunnel-manager.js';
import { ConfigError } from '../../src/config/config-error.js';

function manager() {
  const m = new TunnelManager([
    { name: 'web', remotePort: 8080, localPort: 80 },
    { name: 'ssh', remotePort: 2222, localPort: 22, enabled: false },
  ]);
  const calls: string[] = [];
  m.attach({
    open: (t: ManagedTunnel) => calls.push(`open ${t.config.name} #${t.tunnelId}`),
    close: (t: ManagedTunnel) => calls.push(`close ${t.config.name} #${t.tunnelId}`),
    changed: () => calls.push('changed'),
  });
  return { m, calls };
}

describe('TunnelManager', () => {
  test('defaults come from the schema; disabled tunnels are listed but not opened', () => {
    const { m } = manager();
    const web = m.byName('web')!;
    assert.equal(web.config.localHost, '127.0.0.1');
    assert.equal(web.config.compress, true);
    assert.equal(web.runtime.status, 'opening');
    assert.equal(m.byName('ssh')!.runtime.status, 'disabled');
    assert.deepEqual(web.runtime.local, { state: 'unknown' });
    assert.deepEqual(web.runtime.recent, []);
  });

  test('add, update and remove reach the running client; a change the server sees reopens with a new id', () => {
    const { m, calls } = manager();
    const web = m.byName('web')!;
    const id = web.tunnelId;
    m.update('web', { name: 'web', remotePort: 8080, localPort: 81 });
    assert.equal(web.tunnelId, id, 'a local-only change does not reopen');
    m.update('web', { name: 'web', remotePort: 8080, localPort: 81, compress: false });
    assert.notEqual(web.tunnelId, id, 'compress is on the wire: reopened');
    m.add({ name: 'db', remotePort: 5433, localPort: 5432 });
    m.remove('db');
    assert.deepEqual(
      calls.map((c) => c.replace(/#\d+/, '#')),
      ['changed', 'close web #', 'open web #', 'changed', 'open db #', 'changed', 'close db #', 'changed'],
    );
  });

  test('counters and history survive disable and enable; state starts over', () => {
    const { m } = manager();
    const web = m.byName('web')!;
    web.runtime.totalConnections = 5;
    web.runtime.bytesIn = 100;
    web.runtime.bytesOut = 200;
    web.runtime.failedDials = 1;
    web.runtime.recent.push({ id: 1, at: 1, peer: 'x', open: false, bytesIn: 1, bytesOut: 2 });
    web.runtime.status = 'error';
    web.runtime.error = 'port_in_use';
    web.runtime.errorReason = 'port_in_use';
    web.runtime.nextRetryAt = 99;
    m.setEnabled('web', false);
    m.setEnabled('web', true);
    const r = m.byName('web')!.runtime;
    assert.deepEqual(
      [r.totalConnections, r.bytesIn, r.bytesOut, r.failedDials, r.recent.length],
      [5, 100, 200, 1, 1],
    );
    assert.equal(r.status, 'opening');
    assert.equal(r.error, undefined);
    assert.equal(r.errorReason, undefined);
    assert.equal(r.nextRetryAt, undefined);
  });

  test('retry() reopens a tunnel in error at once, with a new id; otherwise it does nothing', () => {
    const { m, calls } = manager();
    const web = m.byName('web')!;
    m.retry('web');
    assert.deepEqual(calls, [], 'not in error');
    web.runtime.status = 'error';
    const id = web.tunnelId;
    m.retry('web');
    assert.notEqual(web.tunnelId, id);
    assert.deepEqual(calls, [`open web #${web.tunnelId}`, 'changed']);
  });

  test('bad changes throw a ConfigError naming the field; nothing changes', () => {
    const { m, calls } = manager();
    assert.throws(
      () => m.add({ name: 'web', remotePort: 9999, localPort: 1 }),
      (e: unknown) => e instanceof ConfigError && e.field === 'name',
    );
    assert.throws(
      () => m.add({ name: 'x', remotePort: 8080, localPort: 1 }),
      (e: unknown) => e instanceof ConfigError && e.field === 'remotePort',
    );
    assert.throws(() => m.remove('nope'), ConfigError);
    assert.equal(m.list().length, 2);
    assert.deepEqual(calls, []);
  });
});

describe('StateStore', () => {
  const store = (m = manager().m) =>
    new StateStore({
      identity: { publicKeyLine: 'ssh-ed25519 AAAA', fingerprint: 'SHA256:x' },
      serverAddress: 'example.net:9000',
      tunnels: () => m.views(),
    });

  test('snapshot(): a copy with paused, the grant and each tunnel view; changing it changes nothing', () => {
    const s = store();
    s.setGrant({ allowedPorts: [{ low: 1, high: 2 }], limits: { maxConnections: 3, rateLimit: 4 } });
    s.setPaused(true);
    const a = s.snapshot();
    assert.equal(a.paused, true);
    assert.deepEqual(a.server, {
      address: 'example.net:9000',
      allowedPorts: [{ low: 1, high: 2 }],
      limits: { maxConnections: 3, rateLimit: 4 },
    });
    assert.equal(a.tunnels.length, 2);
    a.server.allowedPorts![0]!.low = 99;
    a.tunnels[0]!.recent!.push({ id: 9, at: 0, peer: '', open: true, bytesIn: 0, bytesOut: 0 });
    const b = s.snapshot();
    assert.equal(b.server.allowedPorts![0]!.low, 1);
    assert.equal(b.tunnels[0]!.recent!.length, 0);
    s.setServerAddress('other:1');
    assert.deepEqual(s.snapshot().server, { address: 'other:1' });
  });

  test('structural changes emit at once; a burst of counter changes emits once, soon after', async () => {
    const s = store();
    let changes = 0;
    s.on('change', () => {
      changes += 1;
    });
    s.setConnection({ kind: 'connecting', attempt: 1 });
    assert.equal(changes, 1);
    for (let i = 0; i < 1000; i++) s.countersChanged();
    assert.equal(changes, 1, 'batched');
    // The flush timer is unref'd (it must not keep a stopping client alive): hold the loop meanwhile.
    const hold = setTimeout(() => {}, 5000);
    await new Promise<void>((r) => s.once('change', () => r()));
    clearTimeout(hold);
    assert.equal(changes, 2);
  });

  test('events are kept, most recent last, bounded', () => {
    const s = store();
    for (let i = 0; i < 250; i++) s.event('info', `e${i}`);
    const ev = s.snapshot().events;
    assert.equal(ev.length, 200);
    assert.equal(ev.at(-1)!.message, 'e249');
  });
});
