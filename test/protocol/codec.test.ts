/**
 * The frame codec on its own (no sockets): every message round-trips through a keyed encoder and
 * decoder, a frame split anywhere comes out exactly once, and random input only ever ends in a coded
 * ProtocolError. The message layer's own tests are messages.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { type CompressionMode, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { MAX_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN, MAX_PAYLOAD } from '../../src/protocol/limits.js';
import {
  type Data,
  decodeClientMessage,
  decodeMessage,
  encodeMessage,
  type Message,
} from '../../src/protocol/messages.js';
import { ALL_TYPE_CODES, drain, keyedPair, randomKeys, sampleMessages } from './fixtures.js';

const MODES: CompressionMode[] = ['auto', 'always', 'never'];
const ALL_CODES: ReadonlySet<ProtocolErrorCode> = new Set<ProtocolErrorCode>([
  'ERR_FRAME_TOO_LARGE',
  'ERR_FRAME_TOO_SMALL',
  'ERR_DECRYPT',
  'ERR_DECOMPRESS',
  'ERR_DECOMPRESSED_TOO_LARGE',
  'ERR_UNKNOWN_CODEC',
  'ERR_MALFORMED',
  'ERR_UNKNOWN_TYPE',
  'ERR_UNEXPECTED_MESSAGE',
  'ERR_NONCE_EXHAUSTED',
  'ERR_VERSION_MISMATCH',
]);

/** Feeds `bytes` cut at `cuts`, draining after every piece; returns the messages and when they came. */
function feed<M extends Message>(
  decoder: FrameDecoder<M>,
  bytes: Buffer,
  cuts: number[],
): Array<[number, M]> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Array<[number, M]> = [];
  let prev = 0;
  for (const end of [...points, bytes.length]) {
    decoder.push(bytes.subarray(prev, end));
    prev = end;
    for (const m of drain(decoder)) out.push([end, m]);
  }
  return out;
}

describe('frame codec', () => {
  for (const mode of MODES) {
    test(`every message round-trips through a keyed encoder and decoder (${mode})`, () => {
      const { encoder, decoder } = keyedPair(mode);
      const samples = sampleMessages();
      for (const msg of samples) decoder.push(encoder.encodeToBuffer(msg));
      assert.deepEqual(drain(decoder), samples);
      assert.equal(decoder.buffered, 0);
    });
  }

  test('cleartext frames are len u32 BE | plaintext', () => {
    const enc = new FrameEncoder();
    const msg: Message = { type: 'Heartbeat', reply: true, seq: 9 };
    const frame = enc.encodeToBuffer(msg);
    assert.equal(frame.readUInt32BE(0), frame.length - 4);
    assert.deepEqual(frame.subarray(4), encodeMessage(msg));
  });

  const splitCases: Array<[string, boolean, Message]> = [
    ['cleartext ClientHello', false, sampleMessages()[0]!],
    ['keyed TunnelStatus', true, sampleMessages()[10]!],
    ['keyed compressible Data', true, { type: 'Data', fin: true, payload: Buffer.from('abc'.repeat(100)) }],
  ];
  for (const [name, keyed, msg] of splitCases) {
    test(`one frame split at every byte position comes out exactly once, at the end (${name})`, () => {
      const keys = randomKeys();
      const encoder = new FrameEncoder({ compression: 'always' });
      if (keyed) encoder.setKeys(keys);
      const frame = encoder.encodeToBuffer(msg);
      for (let cut = 0; cut <= frame.length; cut++) {
        const decoder = new FrameDecoder(decodeMessage);
        if (keyed) decoder.setKeys(keys);
        decoder.push(frame.subarray(0, cut));
        if (cut < frame.length)
          assert.equal(decoder.next(), undefined, `nothing before the end (cut ${cut})`);
        decoder.push(frame.subarray(cut));
        assert.deepEqual(decoder.next(), msg, `cut ${cut}`);
        assert.equal(decoder.next(), undefined);
        assert.equal(decoder.buffered, 0);
      }
      // And one byte at a time.
      const decoder = new FrameDecoder(decodeMessage);
      if (keyed) decoder.setKeys(keys);
      const got = feed(decoder, frame, [...frame.keys()]);
      assert.equal(got.length, 1);
      assert.equal(got[0]![0], frame.length);
      assert.deepEqual(got[0]![1], msg);
    });
  }

  test('two frames in one chunk come out as two messages', () => {
    const { encoder, decoder } = keyedPair();
    const a: Message = { type: 'Data', fin: false, payload: Buffer.from('first') };
    const b: Message = { type: 'Data', fin: true, payload: Buffer.from('second') };
    decoder.push(Buffer.concat([encoder.encodeToBuffer(a), encoder.encodeToBuffer(b)]));
    assert.deepEqual(decoder.next(), a);
    assert.deepEqual(decoder.next(), b);
    assert.equal(decoder.next(), undefined);
  });

  test('keys can change between two frames that arrived in one chunk (the handshake switch)', () => {
    const keys = randomKeys();
    const clear = new FrameEncoder();
    const keyed = new FrameEncoder();
    keyed.setKeys(keys);
    const first: Message = { type: 'Heartbeat', reply: false, seq: 1 };
    const second: Message = { type: 'Heartbeat', reply: false, seq: 2 };
    const decoder = new FrameDecoder(decodeMessage);
    decoder.push(Buffer.concat([clear.encodeToBuffer(first), keyed.encodeToBuffer(second)]));
    assert.deepEqual(decoder.next(), first);
    decoder.setKeys(keys);
    assert.deepEqual(decoder.next(), second);
  });

  test('property: random Data payloads (0..MAX_PAYLOAD) round-trip with random split points', () => {
    const payloadArb = fc
      .record({
        len: fc.oneof(fc.constant(0), fc.constant(MAX_PAYLOAD), fc.integer({ min: 0, max: MAX_PAYLOAD })),
        kind: fc.constantFrom('noise', 'pattern', 'zeros'),
        pattern: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      })
      .map(({ len, kind, pattern }) => {
        if (kind === 'zeros') return Buffer.alloc(len);
        if (kind === 'pattern') return Buffer.alloc(len, Buffer.from(pattern));
        return expand(Buffer.from(pattern), len);
      });
    fc.assert(
      fc.property(
        payloadArb,
        fc.boolean(),
        fc.constantFrom(...MODES),
        fc.array(fc.nat(), { maxLength: 6 }),
        (payload, fin, mode, cuts) => {
          const { encoder, decoder } = keyedPair(mode);
          const msg: Data = { type: 'Data', fin, payload };
          const frame = encoder.encodeToBuffer(msg);
          assert.ok(frame.length <= 4 + 1 + 6 + payload.length + 16, 'never larger than stored');
          const got = feed(decoder, frame, cuts);
          assert.equal(got.length, 1);
          assert.equal(got[0]![0], frame.length, 'the message comes out only at the end');
          const out = got[0]![1] as Data;
          assert.equal(out.fin, fin);
          assert.ok(out.payload.equals(payload));
        },
      ),
      { numRuns: 60 },
    );
  });

  for (const keyed of [false, true]) {
    test(`property: random bytes into a ${keyed ? 'keyed' : 'cleartext'} decoder end in a coded ProtocolError, within the limit`, () => {
      const limit = keyed ? MAX_FRAME_LEN : MAX_HANDSHAKE_FRAME_LEN;
      // Mostly plausible length headers (small or near the limit) followed by random bytes.
      const maxRest = keyed ? 600 : 2600;
      const streamArb = fc.oneof(
        fc.uint8Array({ maxLength: maxRest }),
        fc
          .tuple(
            fc.oneof(
              fc.integer({ min: 0, max: 64 }),
              fc.integer({ min: limit - 4, max: limit + 4 }),
              fc.nat(),
            ),
            fc.uint8Array({ maxLength: maxRest }),
          )
          .map(([len, rest]) => {
            const h = Buffer.alloc(4);
            h.writeUInt32BE(len >>> 0);
            return Buffer.concat([h, rest]);
          }),
      );
      fc.assert(
        fc.property(streamArb, fc.array(fc.nat(), { maxLength: 8 }), (raw, cuts) => {
          const bytes = Buffer.from(raw);
          const decoder = new FrameDecoder(keyed ? decodeMessage : decodeClientMessage);
          if (keyed) decoder.setKeys(randomKeys());
          const firstLen = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          let prev = 0;
          for (const end of [...points, bytes.length]) {
            decoder.push(bytes.subarray(prev, end));
            prev = end;
            try {
              drain(decoder);
            } catch (err) {
              assert.ok(err instanceof ProtocolError, `not a ProtocolError: ${String(err)}`);
              assert.ok(ALL_CODES.has(err.code), `unexpected code ${err.code}`);
              if (firstLen > limit) assert.equal(err.code, 'ERR_FRAME_TOO_LARGE');
              // The decoder stays failed.
              assert.throws(
                () => decoder.next(),
                (e: unknown) => e === err,
              );
              return;
            }
            assert.ok(decoder.buffered <= 4 + limit, `buffered ${decoder.buffered} > 4 + ${limit}`);
            if (firstLen > limit)
              assert.ok(end < 4, 'an oversized length must be refused as soon as it is seen');
          }
        }),
        { numRuns: 400 },
      );
    });
  }

  test('property: random plaintexts into decodeMessage give a message or a coded ProtocolError', () => {
    const arb = fc
      .tuple(
        fc.oneof(fc.constantFrom(...ALL_TYPE_CODES), fc.integer({ min: 0, max: 255 })),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
        fc.oneof(fc.constant(0), fc.nat()),
        fc.uint8Array({ maxLength: 200 }),
      )
      .map(([type, flags, stream, payload]) => {
        const h = Buffer.alloc(6);
        h.writeUInt8(type, 0);
        h.writeUInt8(flags, 1);
        h.writeUInt32BE(stream >>> 0, 2);
        return Buffer.concat([h, payload]);
      });
    fc.assert(
      fc.property(arb, (plaintext) => {
        try {
          const msg = decodeMessage(plaintext);
          // What decodes re-encodes to a valid plaintext of the same type.
          assert.equal(encodeMessage(msg)[0], plaintext[0]);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `not a ProtocolError: ${String(err)}`);
          assert.ok(ALL_CODES.has(err.code));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** Deterministic incompressible bytes: SHA-256 in counter mode over a seed. */
function expand(seed: Buffer, len: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  for (let off = 0, i = 0; off < len; off += 32, i++) {
    createHash('sha256').update(seed).update(String(i)).digest().copy(out, off);
  }
  return out;
}

test('expand() is incompressible enough to exercise the stored path', () => {
  const { encoder } = keyedPair('always');
  const payload = expand(randomBytes(8), 4096);
  const frame = encoder.encodeToBuffer({ type: 'Data', fin: false, payload });
  assert.equal(frame.length, 4 + 1 + 6 + payload.length + 16);
});
