/** Large keyed frames that arrive in several reads are decrypted piece by piece: the same checks hold. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ProtocolError } from '../../src/protocol/errors.js';
import { type DirectionKeys, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { type Data, decodeMessage, type Message } from '../../src/protocol/messages.js';

const keys: DirectionKeys = { key: randomBytes(32), nonceBase: randomBytes(4) };

function pair(compression: 'auto' | 'never' = 'never') {
  const enc = new FrameEncoder({ compression });
  enc.setKeys(keys);
  const dec = new FrameDecoder<Message>(decodeMessage);
  dec.setKeys(keys);
  return { enc, dec };
}

/** Feeds `bytes` in chunks of `size`, collecting messages as they complete. */
function feed(dec: FrameDecoder<Message>, bytes: Buffer, size: number): Message[] {
  const out: Message[] = [];
  for (let off = 0; off < bytes.length; off += size) {
    dec.push(bytes.subarray(off, off + size));
    for (let m = dec.next(); m; m = dec.next()) out.push(m);
  }
  return out;
}

test('a 200 KiB Data frame in 1,000-byte reads comes out whole, once, in pieces', () => {
  const { enc, dec } = pair();
  const payload = randomBytes(200 * 1024);
  const msgs = feed(dec, enc.encodeToBuffer({ type: 'Data', fin: true, payload }), 1000);
  assert.equal(msgs.length, 1);
  const m = msgs[0] as Data;
  assert.equal(m.fin, true);
  assert.ok(m.pieces && m.pieces.length > 1, 'kept in pieces');
  assert.ok(m.payload.equals(payload));
  assert.equal(dec.buffered, 0);
});

test('streamed frames interleave with small ones and with compressed ones', () => {
  const { enc, dec } = pair('auto');
  const big = randomBytes(70_000);
  const json = Buffer.from(JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ i, ok: true }))));
  const wire = Buffer.concat([
    enc.encodeToBuffer({ type: 'Heartbeat', reply: false, seq: 1 }),
    enc.encodeToBuffer({ type: 'Data', fin: false, payload: big }),
    enc.encodeToBuffer({ type: 'Data', fin: false, payload: json }),
    enc.encodeToBuffer({ type: 'Data', fin: true, payload: Buffer.alloc(0) }),
  ]);
  for (const size of [1, 7, 4096, 65536]) {
    const fresh = pair('auto');
    const again = Buffer.concat([
      fresh.enc.encodeToBuffer({ type: 'Heartbeat', reply: false, seq: 1 }),
      fresh.enc.encodeToBuffer({ type: 'Data', fin: false, payload: big }),
      fresh.enc.encodeToBuffer({ type: 'Data', fin: false, payload: json }),
      fresh.enc.encodeToBuffer({ type: 'Data', fin: true, payload: Buffer.alloc(0) }),
    ]);
    const msgs = feed(fresh.dec, again, size);
    assert.deepEqual(
      msgs.map((m) => m.type),
      ['Heartbeat', 'Data', 'Data', 'Data'],
      `reads of ${size}`,
    );
    assert.ok((msgs[1] as Data).payload.equals(big));
    assert.ok((msgs[2] as Data).payload.equals(json));
    assert.equal((msgs[3] as Data).fin, true);
  }
  assert.ok(feed(dec, wire, 5000).length === 4);
});

test('a flipped bit in a streamed frame (ciphertext, tag or length) is ERR_DECRYPT, and nothing leaks out', () => {
  const payload = randomBytes(100 * 1024);
  for (const where of ['ciphertext', 'tag', 'length'] as const) {
    const { enc, dec } = pair();
    const frame = enc.encodeToBuffer({ type: 'Data', fin: false, payload });
    if (where === 'length') frame.writeUInt32BE(frame.readUInt32BE(0) - 256, 0);
    else frame[where === 'ciphertext' ? 50_000 : frame.length - 3]! ^= 0x10;
    assert.throws(
      () => feed(dec, frame, 3000),
      (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_DECRYPT',
      where,
    );
  }
});

test('a replayed streamed frame is refused', () => {
  const { enc, dec } = pair();
  const frame = enc.encodeToBuffer({ type: 'Data', fin: false, payload: randomBytes(64 * 1024) });
  assert.equal(feed(dec, frame, 10_000).length, 1);
  assert.throws(
    () => feed(dec, frame, 10_000),
    (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_DECRYPT',
  );
});
