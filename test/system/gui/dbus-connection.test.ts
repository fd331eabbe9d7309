/** Our D-Bus connection against a real dbus-daemon, and cross-checked with GLib's gdbus. */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { DBusConnection, DBusError } from '../../../src/gui/dbus/connection.js';
import { Variant } from '../../../src/gui/dbus/marshal.js';
import { gdbusCall, startPrivateBus } from './lib/private-bus.js';

/** A private bus with two connections on it, all closed after the test. */
async function twoOnABus(t: TestContext) {
  const bus = await startPrivateBus();
  t.after(() => bus.close());
  const a = await DBusConnection.connect(bus.address);
  const b = await DBusConnection.connect(bus.address);
  t.after(() => {
    a.close();
    b.close();
  });
  return { address: bus.address, a, b };
}

describe('D-Bus connection on a private bus', () => {
  test('says Hello, owns a name, answers calls and reports the caller', async (t) => {
    const { a, b } = await twoOnABus(t);
    assert.match(a.uniqueName, /^:\d+\.\d+$/);
    assert.equal(await a.requestName('org.example.Echo'), 1);
    const callers: string[] = [];
    a.exportObject('/echo', (m) => {
      callers.push(m.sender ?? '');
      if (m.member === 'Fail') throw new DBusError('org.example.Error.Nope', 'nope');
      return { signature: m.signature, body: m.body };
    });
    const reply = await b.call({
      destination: 'org.example.Echo',
      path: '/echo',
      interface: 'org.example.Echo',
      member: 'Echo',
      signature: 'sa{sv}',
      body: ['x', { k: new Variant('ai', [1, 2]) }],
    });
    assert.deepEqual(reply.body, ['x', new Map([['k', new Variant('ai', [1, 2])]])]);
    assert.deepEqual(callers, [b.uniqueName]);
    await assert.rejects(
      b.call({
        destination: 'org.example.Echo',
        path: '/echo',
        interface: 'org.example.Echo',
        member: 'Fail',
      }),
      (e: unknown) => e instanceof DBusError && e.errorName === 'org.example.Error.Nope',
    );
    await assert.rejects(
      b.call({ destination: 'org.example.Echo', path: '/none', interface: 'x.y', member: 'Z' }),
      (e: unknown) => e instanceof DBusError && e.errorName === 'org.freedesktop.DBus.Error.UnknownObject',
    );
    assert.equal(await b.nameOwner('org.example.Echo'), a.uniqueName);
    assert.equal(await b.nameOwner('org.example.Nobody'), undefined);
  });

  test('delivers signals that match a rule', async (t) => {
    const { a, b } = await twoOnABus(t);
    await b.addMatch("type='signal',interface='org.example.Sig'");
    const got = new Promise<unknown[]>((resolve) => b.once('signal', (m) => resolve(m.body)));
    a.emitSignal('/echo', 'org.example.Sig', 'Ping', 'ui', [42, -1]);
    assert.deepEqual(await got, [42, -1]);
  });

  test("GLib's gdbus reads what we send and sends what we read", async (t) => {
    const { address, a } = await twoOnABus(t);
    assert.equal(await a.requestName('org.example.Echo'), 1);
    a.exportObject('/glib', (m) => ({
      signature: 'sa(iiay)(ia{sv}av)',
      body: [
        `got ${m.body.length}: ${m.body[0]}`,
        [[2, 1, Buffer.from([255, 0])]],
        [0, { label: new Variant('s', 'Hi') }, [new Variant('(ia{sv}av)', [1, {}, []])]],
      ],
    }));
    const stdout = await gdbusCall(address, 'org.example.Echo', '/glib', 'org.example.G.M', [
      '[1, 2, 3]',
      "{'a': <'b'>}",
    ]);
    assert.match(stdout, /'got 2: 1,2,3'/);
    assert.match(stdout, /\[\(2, 1, b'\\377'\)\]/);
    assert.match(stdout, /\(0, \{'label': <'Hi'>\}, \[<\(1, @a\{sv\} \{\}, @av \[\]\)>\]\)/);
  });
});
