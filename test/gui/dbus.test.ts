import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DBusConnection, DBusError, socketPathOf } from '../../src/gui/tray/dbus/connection.js';
import { parseSignature, Variant, WireReader, WireWriter } from '../../src/gui/tray/dbus/marshal.js';
import {
  decodeMessage,
  encodeMessage,
  MessageSplitter,
  MessageType,
} from '../../src/gui/tray/dbus/message.js';
import { type PrivateBus, startPrivateBus } from './private-bus.js';

const run = promisify(execFile);
/** The GLib cross-check needs gdbus (Debian: libglib2.0-bin); without it, say so instead of failing. */

describe('D-Bus marshalling', () => {
  test('round-trips nested containers, variants and alignment', () => {
    const sig = 'ya{sv}(iiay)a(ia{sv}av)xtdbogn';
    const values = [
      7,
      new Map<string, Variant>([
        ['label', new Variant('s', 'Quit')],
        ['toggle-state', new Variant('i', 1)],
        ['nested', new Variant('av', [new Variant('u', 3), new Variant('as', ['a', 'b'])])],
      ]),
      [22, 22, Buffer.from([1, 2, 3, 4])],
      [[5, new Map([['enabled', new Variant('b', false)]]), [new Variant('(ia{sv}av)', [6, new Map(), []])]]],
      -5n,
      2n ** 63n,
      1.5,
      true,
      '/a/b_c',
      'a{sv}',
      -2,
    ];
    const w = new WireWriter();
    w.byte(0); // start off-alignment so padding is exercised
    w.write(sig, values);
    const r = new WireReader(w.result(), { offset: 1 });
    const back = r.read(sig);
    assert.equal(r.offset, w.length);
    assert.deepEqual(back, values);
  });

  test('refuses bad signatures, truncated and lying input', () => {
    assert.throws(() => parseSignature('a{vs}'), /dict key/);
    assert.throws(() => parseSignature('(i'), /unclosed|incomplete/);
    assert.throws(() => parseSignature('h'), /unsupported/);
    const w = new WireWriter();
    w.write('as', [['hello', 'world']]);
    const full = w.result();
    assert.throws(() => new WireReader(full.subarray(0, full.length - 3)).read('as'), /truncated/);
    const lying = Buffer.from(full);
    lying.writeUInt32LE(0xfffffff0, 0);
    assert.throws(() => new WireReader(lying).read('as'), /longer|truncated/);
  });

  test('messages survive being split at every byte', () => {
    const a = encodeMessage(
      {
        type: MessageType.Signal,
        flags: 1,
        path: '/x',
        interface: 'a.b',
        member: 'C',
        signature: 'us',
        body: [9, 'hi'],
      },
      7,
    );
    const b = encodeMessage(
      { type: MessageType.MethodReturn, flags: 1, replySerial: 7, signature: '', body: [] },
      8,
    );
    const stream = Buffer.concat([a, b]);
    for (let cut = 1; cut < stream.length; cut++) {
      const s = new MessageSplitter();
      const got = [...s.push(stream.subarray(0, cut)), ...s.push(stream.subarray(cut))];
      assert.equal(got.length, 2);
      assert.deepEqual(got[0]!.body, [9, 'hi']);
      assert.equal(got[1]!.replySerial, 7);
    }
    assert.equal(decodeMessage(a).member, 'C');
  });

  test('reads big-endian messages', () => {
    // Hand-built: a method return, serial 2, reply to 1, signature "u", body 0x01020304, big-endian.
    const hex =
      '42020101' +
      '00000004' +
      '00000002' +
      '0000000f' +
      '0501750000000001' +
      '0801670001750000' +
      '01020304';
    const m = decodeMessage(Buffer.from(hex, 'hex'));
    assert.equal(m.replySerial, 1);
    assert.deepEqual(m.body, [0x01020304]);
  });

  test('parses bus addresses', () => {
    assert.equal(socketPathOf('unix:path=/run/user/1000/bus'), '/run/user/1000/bus');
    assert.equal(socketPathOf('tcp:host=x,port=1;unix:abstract=/tmp/dbus-XYZ,guid=abc'), '\0/tmp/dbus-XYZ');
    assert.throws(() => socketPathOf('tcp:host=x,port=1'), /no unix socket/);
  });
});

describe('D-Bus connection on a private bus', () => {
  let bus: PrivateBus;
  let a: DBusConnection;
  let b: DBusConnection;

  before(async () => {
    bus = await startPrivateBus();
    a = await DBusConnection.connect(bus.address);
    b = await DBusConnection.connect(bus.address);
  });
  after(async () => {
    a?.close();
    b?.close();
    await bus?.close();
  });

  test('says Hello, owns a name, answers calls and reports the caller', async () => {
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

  test('delivers signals that match a rule', async () => {
    await b.addMatch("type='signal',interface='org.example.Sig'");
    const got = new Promise<unknown[]>((resolve) => b.once('signal', (m) => resolve(m.body)));
    a.emitSignal('/echo', 'org.example.Sig', 'Ping', 'ui', [42, -1]);
    assert.deepEqual(await got, [42, -1]);
  });

  test("GLib's gdbus reads what we send and sends what we read", async () => {
    a.exportObject('/glib', (m) => ({
      signature: 'sa(iiay)(ia{sv}av)',
      body: [
        `got ${m.body.length}: ${m.body[0]}`,
        [[2, 1, Buffer.from([255, 0])]],
        [0, { label: new Variant('s', 'Hi') }, [new Variant('(ia{sv}av)', [1, {}, []])]],
      ],
    }));
    const { stdout } = await run(
      'gdbus',
      [
        'call',
        '--address',
        bus.address,
        '--dest',
        'org.example.Echo',
        '--object-path',
        '/glib',
        '--method',
        'org.example.G.M',
        '[1, 2, 3]',
        "{'a': <'b'>}",
      ],
      { timeout: 10_000 },
    );
    assert.match(stdout, /'got 2: 1,2,3'/);
    assert.match(stdout, /\[\(2, 1, b'\\377'\)\]/);
    assert.match(stdout, /\(0, \{'label': <'Hi'>\}, \[<\(1, @a\{sv\} \{\}, @av \[\]\)>\]\)/);
  });
});
