/** D-Bus wire code without a bus: marshalling, framing split at every byte, hostile input, addresses. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { socketPathOf } from '../../../src/gui/dbus/connection.js';
import { parseSignature, Variant, WireReader, WireWriter } from '../../../src/gui/dbus/marshal.js';
import { decodeMessage, encodeMessage, MessageSplitter, MessageType } from '../../../src/gui/dbus/message.js';

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
