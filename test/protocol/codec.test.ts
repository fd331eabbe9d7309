/**
 * The message layer and the frame codec on their own (no sockets): every message round-trips, a frame
 * split anywhere comes out exactly once, and random input only ever ends in a coded ProtocolError.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { type CompressionMode, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import {
  MAX_FRAME_LEN,
  MAX_HANDSHAKE_FRAME_LEN,
  MAX_PAYLOAD,
  MAX_STRING_LEN,
  MAX_TUNNEL_NAME_LEN,
} from '../../src/protocol/limits.js';
import {
  type Data,
  decodeClientMessage,
  decodeDataHeader,
  decodeMessage,
  decodeServerMessage,
  encodeMessage,
  type Message,
  MsgType,
} from '../../src/protocol/messages.js';
import { ALL_TYPE_CODES, drain, keyedPair, randomKeys, sampleMessages, throwsCode } from './fixtures.js';

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

describe('messages', () => {
  test('the samples cover every type code', () => {
    const covered = new Set(sampleMessages().map((m) => encodeMessage(m)[0]));
    for (const code of ALL_TYPE_CODES)
      assert.ok(covered.has(code), `no sample of type 0x${code.toString(16)}`);
  });

  test('every message round-trips through encodeMessage/decodeMessage', () => {
    for (const msg of sampleMessages()) {
      const bytes = encodeMessage(msg);
      assert.deepEqual(decodeMessage(bytes), msg, msg.type);
      assert.deepEqual(encodeMessage(decodeMessage(bytes)), bytes, `${msg.type} re-encodes identically`);
    }
  });

  test('direction: each side decodes only what the other side sends', () => {
    const clientOnly = [MsgType.ClientHello, MsgType.ClientAuth, MsgType.DataHello, MsgType.OpenTunnel];
    const serverOnly = [MsgType.ServerHello, MsgType.AuthOk, MsgType.AuthFail, MsgType.IncomingConn];
    for (const msg of sampleMessages()) {
      const bytes = encodeMessage(msg);
      const t = bytes[0]!;
      if (clientOnly.includes(t as never))
        throwsCode(() => decodeServerMessage(bytes), 'ERR_UNEXPECTED_MESSAGE');
      else if (serverOnly.includes(t as never))
        throwsCode(() => decodeClientMessage(bytes), 'ERR_UNEXPECTED_MESSAGE');
    }
    assert.deepEqual(
      decodeClientMessage(encodeMessage({ type: 'Heartbeat', reply: false, seq: 1 })).type,
      'Heartbeat',
    );
    assert.deepEqual(
      decodeServerMessage(encodeMessage({ type: 'Heartbeat', reply: true, seq: 1 })).type,
      'Heartbeat',
    );
    throwsCode(() => decodeClientMessage(Buffer.from('7f0000000000', 'hex')), 'ERR_UNKNOWN_TYPE');
  });

  test('malformed plaintexts are refused with ERR_MALFORMED', () => {
    const ok = encodeMessage({ type: 'Heartbeat', reply: false, seq: 1 });
    throwsCode(() => decodeMessage(ok.subarray(0, 5)), 'ERR_MALFORMED'); // shorter than the header
    throwsCode(() => decodeMessage(ok.subarray(0, 9)), 'ERR_MALFORMED'); // payload ends early
    throwsCode(() => decodeMessage(Buffer.concat([ok, Buffer.of(0)])), 'ERR_MALFORMED'); // trailing byte
    const flags = Buffer.from(ok);
    flags[1] = 0x02; // unknown flag
    throwsCode(() => decodeMessage(flags), 'ERR_MALFORMED');
    const stream = Buffer.from(ok);
    stream.writeUInt32BE(5, 2); // Heartbeat does not use stream_id
    throwsCode(() => decodeMessage(stream), 'ERR_MALFORMED');
    const reason = encodeMessage({ type: 'AuthFail', reason: 'busy', version: 2, message: '' });
    reason[6] = 99; // outside the closed set
    throwsCode(() => decodeMessage(reason), 'ERR_MALFORMED');
    const role = encodeMessage(sampleMessages()[0]!);
    role[8] = 2; // a ClientHello with the server's role
    throwsCode(() => decodeMessage(role), 'ERR_MALFORMED');
    const longName = Buffer.concat([
      Buffer.from('100000000001', 'hex'),
      Buffer.from('1f90', 'hex'),
      Buffer.of(65),
    ]);
    throwsCode(
      () => decodeMessage(Buffer.concat([longName, Buffer.alloc(65, 0x61)])),
      'ERR_MALFORMED', // name over MAX_TUNNEL_NAME_LEN
    );
  });

  test('version 2 fields are bounded and checked: ranges, blocks, families, prefixes', () => {
    const open = (blocks: number, family = 4, prefix = 8) =>
      Buffer.concat([
        Buffer.from('100000000001', 'hex'),
        Buffer.from('1f90', 'hex'),
        Buffer.of(1, 0x61),
        Buffer.alloc(8),
        Buffer.of(blocks),
        ...Array.from({ length: blocks }, () =>
          Buffer.concat([Buffer.of(family, prefix), Buffer.alloc(family === 6 ? 16 : 4)]),
        ),
      ]);
    assert.equal(decodeMessage(open(32)).type, 'OpenTunnel');
    throwsCode(() => decodeMessage(open(33)), 'ERR_MALFORMED'); // more than MAX_PERMIT_FROM
    throwsCode(() => decodeMessage(open(1, 5)), 'ERR_MALFORMED'); // family 5
    throwsCode(() => decodeMessage(open(1, 4, 33)), 'ERR_MALFORMED'); // /33 for IPv4
    assert.equal(decodeMessage(open(1, 6, 128)).type, 'OpenTunnel');
    throwsCode(() => decodeMessage(open(1, 6, 129)), 'ERR_MALFORMED');
    const flagged = open(0);
    flagged[1] = 0x02; // NO_COMPRESS is 0x01; nothing else is defined
    throwsCode(() => decodeMessage(flagged), 'ERR_MALFORMED');
    flagged[1] = 0x01;
    assert.equal((decodeMessage(flagged) as { compress: boolean }).compress, false);

    const authOk = (ranges: Array<[number, number]>, count = ranges.length) =>
      Buffer.concat([
        Buffer.from('040000000000', 'hex'),
        Buffer.from('00001388', 'hex'),
        Buffer.from([count >> 8, count & 0xff]),
        ...ranges.map(([lo, hi]) => Buffer.from([lo >> 8, lo & 0xff, hi >> 8, hi & 0xff])),
        Buffer.alloc(8),
      ]);
    assert.deepEqual((decodeMessage(authOk([[1024, 2048]])) as { allowedPorts: unknown }).allowedPorts, [
      { low: 1024, high: 2048 },
    ]);
    throwsCode(() => decodeMessage(authOk([[2048, 1024]])), 'ERR_MALFORMED'); // low above high
    throwsCode(() => decodeMessage(authOk([[0, 10]])), 'ERR_MALFORMED'); // port 0
    throwsCode(() => decodeMessage(authOk([], 257)), 'ERR_MALFORMED'); // more than MAX_AUTH_PORT_RANGES
    throwsCode(() => decodeMessage(authOk([], 3)), 'ERR_MALFORMED'); // count beyond the payload

    const incoming = Buffer.concat([
      Buffer.from('200000000007', 'hex'),
      Buffer.alloc(4),
      Buffer.of(6),
      Buffer.alloc(4 + 2 + 4 + 2),
    ]);
    throwsCode(() => decodeMessage(incoming), 'ERR_MALFORMED'); // family 6 needs 16-byte addresses
    throwsCode(
      () => decodeClientMessage(encodeMessage({ type: 'ChannelsWanted', count: 1 })),
      'ERR_UNEXPECTED_MESSAGE',
    );
    throwsCode(() => decodeMessage(Buffer.from('210000000007', 'hex')), 'ERR_UNKNOWN_TYPE'); // retired DataConnReady
  });

  test('decodeDataHeader: a Data header gives its FIN and payload offset, any other type undefined', () => {
    const fin = encodeMessage({ type: 'Data', fin: true, payload: Buffer.from('ab') });
    assert.deepEqual(decodeDataHeader(fin), { fin: true, payloadOffset: fin.length - 2 });
    assert.deepEqual(
      decodeDataHeader(encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(0) })),
      {
        fin: false,
        payloadOffset: 6,
      },
    );
    assert.equal(decodeDataHeader(encodeMessage({ type: 'Heartbeat', reply: false, seq: 1 })), undefined);
    assert.equal(decodeDataHeader(fin.subarray(0, 5)), undefined);
    const badFlags = Buffer.from(fin);
    badFlags[1] = 0x80;
    throwsCode(() => decodeDataHeader(badFlags), 'ERR_MALFORMED');
    const badStream = Buffer.from(fin);
    badStream.writeUInt32BE(9, 2);
    throwsCode(() => decodeDataHeader(badStream), 'ERR_MALFORMED');
  });

  test('a hello of another version is ERR_VERSION_MISMATCH naming both versions, whatever follows', () => {
    const hello = encodeMessage(sampleMessages()[0]!);
    hello.writeUInt16BE(1, 6);
    const err = throwsCode(() => decodeMessage(hello.subarray(0, 8)), 'ERR_VERSION_MISMATCH');
    assert.match(err.message, /version 1\b.*\b2\b/);
  });

  test('the encoder refuses fields it cannot represent (a bug, not a peer error)', () => {
    assert.throws(
      () =>
        encodeMessage({
          type: 'OpenTunnel',
          tunnelId: 1,
          remotePort: 1,
          name: 'x'.repeat(MAX_TUNNEL_NAME_LEN + 1),
          compress: true,
          maxConnections: 0,
          rateLimit: 0,
          permitFrom: [],
        }),
      RangeError,
    );
    assert.throws(
      () =>
        encodeMessage({ type: 'Error', streamId: 0, code: 'reset', message: 'x'.repeat(MAX_STRING_LEN + 1) }),
      RangeError,
    );
    assert.throws(
      () => encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(MAX_PAYLOAD + 1) }),
      RangeError,
    );
    assert.throws(() => encodeMessage({ type: 'ClientAuth', signature: Buffer.alloc(63) }), RangeError);
  });
});

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
