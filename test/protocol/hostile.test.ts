/**
 * A hostile peer against the frame codec: tampering, replay, reordering, oversized lengths, LZ4 bombs,
 * bad codecs, counter exhaustion, and the sender's compression policy (never larger than stored).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Codec, FrameDecoder, FrameEncoder, MIN_COMPRESS_LEN } from '../../src/protocol/frame-codec.js';
import { MAX_FRAME_LEN, MAX_PLAINTEXT } from '../../src/protocol/limits.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/protocol/messages.js';
import { drain, frameNonce, keyedPair, openFrame, randomKeys, sealFrame, throwsCode } from './fixtures.js';

const DATA: Message = { type: 'Data', fin: false, payload: Buffer.from('a secret that must not be changed') };

function keyedDecoder(keys = randomKeys(), counter = 0n): FrameDecoder<Message> {
  const d = new FrameDecoder(decodeMessage);
  d.setKeys(keys, counter);
  return d;
}

/** A u32 LE. */
function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

describe('tampering', () => {
  test('a flipped bit anywhere in the ciphertext or the tag is ERR_DECRYPT', () => {
    const { encoder, keys } = keyedPair('never');
    const frame = encoder.encodeToBuffer(DATA);
    for (let i = 4; i < frame.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(frame);
        bad[i] = bad[i]! ^ bit;
        const d = keyedDecoder(keys);
        d.push(bad);
        throwsCode(() => d.next(), 'ERR_DECRYPT');
      }
    }
  });

  test('a flipped bit in the length header never yields a message', () => {
    const { encoder, keys } = keyedPair('never');
    const frame = encoder.encodeToBuffer(DATA);
    const next = encoder.encodeToBuffer(DATA);
    for (let bit = 0; bit < 32; bit++) {
      const bad = Buffer.from(frame);
      bad[bit >> 3] = bad[bit >> 3]! ^ (0x80 >> (bit & 7));
      const d = keyedDecoder(keys);
      // Enough bytes after it that the decoder must decide, whatever length it now reads.
      d.push(Buffer.concat([bad, next, Buffer.alloc(MAX_FRAME_LEN)]));
      throwsCode(() => d.next(), 'ERR_DECRYPT', 'ERR_FRAME_TOO_LARGE', 'ERR_FRAME_TOO_SMALL');
    }
  });

  test('a replayed frame is ERR_DECRYPT', () => {
    const { encoder, decoder } = keyedPair();
    const f0 = encoder.encodeToBuffer(DATA);
    decoder.push(f0);
    assert.deepEqual(decoder.next(), DATA);
    decoder.push(f0);
    throwsCode(() => decoder.next(), 'ERR_DECRYPT');
  });

  test('two swapped frames are ERR_DECRYPT', () => {
    const { encoder, decoder } = keyedPair();
    const f0 = encoder.encodeToBuffer({ type: 'Heartbeat', reply: false, seq: 0 });
    const f1 = encoder.encodeToBuffer({ type: 'Heartbeat', reply: false, seq: 1 });
    decoder.push(f1);
    decoder.push(f0);
    throwsCode(() => decoder.next(), 'ERR_DECRYPT');
  });

  test('a frame under the other direction’s keys is ERR_DECRYPT (no reflection)', () => {
    const c2s = keyedPair();
    const s2c = keyedPair();
    s2c.decoder.push(c2s.encoder.encodeToBuffer(DATA));
    throwsCode(() => s2c.decoder.next(), 'ERR_DECRYPT');
  });
});

describe('lengths', () => {
  for (const keyed of [false, true]) {
    test(`length 0xFFFFFFFF is refused with ERR_FRAME_TOO_LARGE after only 4 bytes (${keyed ? 'keyed' : 'cleartext'})`, () => {
      const d = keyed ? keyedDecoder() : new FrameDecoder(decodeMessage);
      d.push(Buffer.from('ffffff', 'hex'));
      assert.equal(d.next(), undefined);
      d.push(Buffer.from('ff', 'hex'));
      throwsCode(() => d.next(), 'ERR_FRAME_TOO_LARGE');
      assert.equal(d.buffered, 0, 'nothing kept after the refusal');
      // Once failed, it stays failed, and more bytes change nothing.
      d.push(Buffer.alloc(10));
      throwsCode(() => d.next(), 'ERR_FRAME_TOO_LARGE');
    });
  }

  test('the exact limits: MAX_FRAME_LEN keyed and 1024 cleartext are accepted, one more is not', () => {
    const header = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const keyed = keyedDecoder();
    keyed.push(header(MAX_FRAME_LEN));
    assert.equal(keyed.next(), undefined, 'waits for the body');
    const over = keyedDecoder();
    over.push(header(MAX_FRAME_LEN + 1));
    throwsCode(() => over.next(), 'ERR_FRAME_TOO_LARGE');
    const clear = new FrameDecoder(decodeMessage);
    clear.push(header(1024));
    assert.equal(clear.next(), undefined);
    const clearOver = new FrameDecoder(decodeMessage);
    clearOver.push(header(1025));
    throwsCode(() => clearOver.next(), 'ERR_FRAME_TOO_LARGE');
  });

  test('a keyed frame shorter than codec byte + tag is ERR_FRAME_TOO_SMALL', () => {
    const d = keyedDecoder();
    d.push(Buffer.concat([Buffer.from('00000010', 'hex'), Buffer.alloc(16)]));
    throwsCode(() => d.next(), 'ERR_FRAME_TOO_SMALL');
  });

  test('a cleartext frame shorter than the plaintext header is ERR_MALFORMED', () => {
    const d = new FrameDecoder(decodeMessage);
    d.push(Buffer.from('000000020100', 'hex'));
    throwsCode(() => d.next(), 'ERR_MALFORMED');
    const zero = new FrameDecoder(decodeMessage);
    zero.push(Buffer.from('00000000', 'hex'));
    throwsCode(() => zero.next(), 'ERR_FRAME_TOO_SMALL');
  });
});

describe('hand-made bodies (encrypted with node:crypto, mirroring the codec)', () => {
  const plaintext = encodeMessage(DATA);

  test('sanity: a hand-made stored body decodes', () => {
    const keys = randomKeys();
    const d = keyedDecoder(keys);
    d.push(sealFrame(keys, 0n, Buffer.concat([Buffer.of(Codec.stored), plaintext])));
    assert.deepEqual(d.next(), DATA);
  });

  test('an LZ4 bomb (declared size 0x7FFFFFFF, tiny block) is ERR_DECOMPRESSED_TOO_LARGE', () => {
    const keys = randomKeys();
    const d = keyedDecoder(keys);
    // token 0x1f: one literal then a 19+ byte match at offset 1, extended by 0xff bytes: a run of zeros.
    const block = Buffer.from('1f00010000ffffffffffffffff00', 'hex');
    d.push(sealFrame(keys, 0n, Buffer.concat([Buffer.of(Codec.lz4), le32(0x7fff_ffff), block])));
    throwsCode(() => d.next(), 'ERR_DECOMPRESSED_TOO_LARGE');
  });

  test('a declared size of MAX_PLAINTEXT + 1 is refused, MAX_PLAINTEXT is not refused for its size', () => {
    const keys = randomKeys();
    const d = keyedDecoder(keys);
    d.push(
      sealFrame(
        keys,
        0n,
        Buffer.concat([Buffer.of(Codec.lz4), le32(MAX_PLAINTEXT + 1), Buffer.of(0x10, 0x40)]),
      ),
    );
    throwsCode(() => d.next(), 'ERR_DECOMPRESSED_TOO_LARGE');
    const d2 = keyedDecoder(keys);
    d2.push(
      sealFrame(keys, 0n, Buffer.concat([Buffer.of(Codec.lz4), le32(MAX_PLAINTEXT), Buffer.of(0x10, 0x40)])),
    );
    throwsCode(() => d2.next(), 'ERR_DECOMPRESS');
  });

  test('a block that decodes to another length than declared is ERR_DECOMPRESS', () => {
    const keys = randomKeys();
    // A valid block of 6 literal bytes (token 0x60), declared as 100 bytes.
    const block = Buffer.concat([Buffer.of(0x60), plaintext.subarray(0, 6)]);
    const d = keyedDecoder(keys);
    d.push(sealFrame(keys, 0n, Buffer.concat([Buffer.of(Codec.lz4), le32(100), block])));
    throwsCode(() => d.next(), 'ERR_DECOMPRESS');
    // The same block declared with its true length decodes (so the refusal above was the length).
    const ok = keyedDecoder(keys);
    ok.push(sealFrame(keys, 0n, Buffer.concat([Buffer.of(Codec.lz4), le32(6), block])));
    assert.deepEqual(ok.next(), { type: 'Data', fin: false, payload: Buffer.alloc(0) });
  });

  test('a corrupt block or a body shorter than the size prefix is ERR_DECOMPRESS', () => {
    const keys = randomKeys();
    const corrupt = keyedDecoder(keys);
    corrupt.push(
      sealFrame(keys, 0n, Buffer.concat([Buffer.of(Codec.lz4), le32(50), Buffer.from('ff0000', 'hex')])),
    );
    throwsCode(() => corrupt.next(), 'ERR_DECOMPRESS');
    const short = keyedDecoder(keys);
    short.push(sealFrame(keys, 0n, Buffer.of(Codec.lz4, 1, 2)));
    throwsCode(() => short.next(), 'ERR_DECOMPRESS');
  });

  test('an unknown codec byte is ERR_UNKNOWN_CODEC', () => {
    for (const codec of [3, 0x80, 0xff]) {
      const keys = randomKeys();
      const d = keyedDecoder(keys);
      d.push(sealFrame(keys, 0n, Buffer.concat([Buffer.of(codec), plaintext])));
      throwsCode(() => d.next(), 'ERR_UNKNOWN_CODEC');
    }
  });

  test('an empty keyed body (codec byte only) is ERR_MALFORMED', () => {
    const keys = randomKeys();
    const d = keyedDecoder(keys);
    d.push(sealFrame(keys, 0n, Buffer.of(Codec.stored)));
    throwsCode(() => d.next(), 'ERR_MALFORMED');
  });
});

describe('nonce counter', () => {
  test('counter 2^64 - 1 is never used: encode throws ERR_NONCE_EXHAUSTED', () => {
    const encoder = new FrameEncoder();
    encoder.setKeys(randomKeys(), 2n ** 64n - 1n);
    throwsCode(() => encoder.encode(DATA), 'ERR_NONCE_EXHAUSTED');
  });

  test('the last usable counter 2^64 - 2 works, then the encoder refuses; the decoder mirrors it', () => {
    const keys = randomKeys();
    const encoder = new FrameEncoder({ compression: 'never' });
    encoder.setKeys(keys, 2n ** 64n - 2n);
    const frame = encoder.encodeToBuffer(DATA);
    assert.deepEqual(
      frameNonce(keys.nonceBase, 2n ** 64n - 2n)
        .subarray(4)
        .toString('hex'),
      'fffffffffffffffe',
    );
    assert.deepEqual(
      openFrame(keys, 2n ** 64n - 2n, frame),
      Buffer.concat([Buffer.of(0), encodeMessage(DATA)]),
    );
    throwsCode(() => encoder.encode(DATA), 'ERR_NONCE_EXHAUSTED');
    const decoder = keyedDecoder(keys, 2n ** 64n - 2n);
    decoder.push(frame);
    assert.deepEqual(decoder.next(), DATA);
    decoder.push(frame);
    throwsCode(() => decoder.next(), 'ERR_NONCE_EXHAUSTED');
  });

  test('the counter carries from the low to the high 32 bits', () => {
    const keys = randomKeys();
    const encoder = new FrameEncoder({ compression: 'never' });
    encoder.setKeys(keys, 0xffff_ffffn);
    encoder.encodeToBuffer(DATA);
    const frame = encoder.encodeToBuffer(DATA);
    assert.deepEqual(openFrame(keys, 0x1_0000_0000n, frame).subarray(1), encodeMessage(DATA));
  });
});

describe('compression policy', () => {
  /** The codec byte of the frame at `counter`. */
  const codecOf = (keys: Parameters<typeof openFrame>[0], counter: bigint, frame: Buffer) =>
    openFrame(keys, counter, frame)[0];
  const json = (): Message => ({
    type: 'Data',
    fin: false,
    payload: Buffer.from(
      JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ id: i, name: `tunnel-${i}`, ok: true }))),
    ),
  });
  const noise = (): Message => ({ type: 'Data', fin: false, payload: randomBytes(4000) });

  test("'auto' stores random data without growth and compresses JSON", () => {
    const { encoder, decoder, keys } = keyedPair('auto');
    const r = noise() as Extract<Message, { type: 'Data' }>;
    const f0 = encoder.encodeToBuffer(r);
    assert.equal(
      f0.length,
      6 + r.payload.length + 1 + 16 + 4,
      'stored: plaintext + codec byte + tag + length',
    );
    assert.equal(codecOf(keys, 0n, f0), Codec.stored);
    // The frame after an incompressible one is skipped (backoff 1); the one after is compressed.
    const j = json() as Extract<Message, { type: 'Data' }>;
    const f1 = encoder.encodeToBuffer(j);
    assert.equal(codecOf(keys, 1n, f1), Codec.stored, 'skipped after an incompressible frame');
    const f2 = encoder.encodeToBuffer(j);
    assert.equal(codecOf(keys, 2n, f2), Codec.lz4);
    assert.ok(f2.length < 6 + j.payload.length, 'JSON compresses');
    decoder.push(Buffer.concat([f0, f1, f2]));
    assert.deepEqual(drain(decoder), [r, j, j]);
  });

  test("'auto' backs off exponentially after repeated incompressible frames", () => {
    const { encoder, keys } = keyedPair('auto');
    let counter = 0n;
    const codecs = (msgs: Message[]) => msgs.map((m) => codecOf(keys, counter++, encoder.encodeToBuffer(m)));
    // noise tried (backoff 1) | noise skipped | noise tried (backoff 2) | 2 skipped | JSON compressed.
    assert.deepEqual(codecs([noise(), noise(), noise(), json(), json(), json()]), [0, 0, 0, 0, 0, 1]);
    // A compressible frame resets the backoff: the next frame is tried at once.
    assert.deepEqual(codecs([json()]), [1]);
  });

  test("'auto' stores frames under MIN_COMPRESS_LEN and they do not count towards the skip", () => {
    const { encoder, keys } = keyedPair('auto');
    const small: Message = { type: 'Data', fin: false, payload: Buffer.alloc(MIN_COMPRESS_LEN - 7) };
    assert.equal(codecOf(keys, 0n, encoder.encodeToBuffer(small)), Codec.stored);
    assert.equal(codecOf(keys, 1n, encoder.encodeToBuffer(noise())), Codec.stored);
    assert.equal(codecOf(keys, 2n, encoder.encodeToBuffer(small)), Codec.stored);
    assert.equal(codecOf(keys, 3n, encoder.encodeToBuffer(json())), Codec.stored, 'still skipping');
    assert.equal(codecOf(keys, 4n, encoder.encodeToBuffer(json())), Codec.lz4);
  });

  test("'always' still never sends a body larger than the stored one", () => {
    const { encoder, keys } = keyedPair('always');
    const r = noise() as Extract<Message, { type: 'Data' }>;
    const f = encoder.encodeToBuffer(r);
    assert.equal(f.length, 6 + r.payload.length + 1 + 16 + 4);
    assert.equal(codecOf(keys, 0n, f), Codec.stored);
    const tiny: Message = { type: 'Heartbeat', reply: false, seq: 1 };
    assert.equal(encoder.encodeToBuffer(tiny).length, 10 + 1 + 16 + 4);
  });

  test("'never' stores compressible data", () => {
    const { encoder, keys } = keyedPair('never');
    assert.equal(codecOf(keys, 0n, encoder.encodeToBuffer(json())), Codec.stored);
  });
});
