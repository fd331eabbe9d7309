/**
 * Codec 2 (zstd, docs/PROTOCOL.md section 3): round trips through the encoder and the decoder, the
 * receiver's checks before and after decompressing (declared size, bombs, lies about the size,
 * truncated and corrupt frames), and the sender never choosing codec 2 unless it was given it.
 * Hostile bodies are sealed by hand with node:crypto, so the decoder's checks are what is tested.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import * as zlib from 'node:zlib';
import { jsonLogCorpus } from '../../bench/corpus.js';
import { compressionStats, zstdAvailable, zstdCompress } from '../../src/protocol/compression.js';
import { Codec, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { MAX_PAYLOAD, MAX_PLAINTEXT } from '../../src/protocol/limits.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/protocol/messages.js';
import { openFrame, randomKeys, sealFrame, throwsCode } from './fixtures.js';

const C = zlib.constants;

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** A zstd frame of `input` made by node:zlib with the given parameters. */
function zstdFrame(input: Buffer, params: Record<number, number> = {}): Buffer {
  return zlib.zstdCompressSync(input, { params: { [C.ZSTD_c_compressionLevel]: 3, ...params } });
}

/** Decodes one hand-made body; returns the decoder's message or throws its ProtocolError. */
function decodeBody(body: Buffer): Message | undefined {
  const keys = randomKeys();
  const d = new FrameDecoder(decodeMessage);
  d.setKeys(keys);
  d.push(sealFrame(keys, 0n, body));
  return d.next();
}

const zstdBody = (declared: number, frame: Buffer) =>
  Buffer.concat([Buffer.of(Codec.zstd), le32(declared), frame]);

describe('codec 2 (zstd)', { skip: !zstdAvailable() && 'this Node has no zstd' }, () => {
  test('an encoder given zstd sends codec 2 (size u32 LE, then one zstd frame) and the decoder takes it back', () => {
    const keys = randomKeys();
    const encoder = new FrameEncoder({ compression: 'always', codec: 'zstd' });
    encoder.setKeys(keys);
    const msg: Message = {
      type: 'Data',
      fin: false,
      payload: jsonLogCorpus(MAX_PAYLOAD).subarray(0, MAX_PAYLOAD),
    };
    const frame = encoder.encodeToBuffer(msg);
    assert.deepEqual(encoder.frames, { stored: 0, lz4: 0, zstd: 1 });
    const body = openFrame(keys, 0n, frame);
    assert.equal(body[0], Codec.zstd);
    assert.equal(body.readUInt32LE(1), encodeMessage(msg).length);
    assert.deepEqual(zlib.zstdDecompressSync(body.subarray(5)), encodeMessage(msg));
    assert.ok(frame.length * 6 < encodeMessage(msg).length, `zstd on JSON logs: ${frame.length} bytes`);
    const before = compressionStats().decompressed.zstd;
    const decoder = new FrameDecoder(decodeMessage);
    decoder.setKeys(keys);
    // In pieces, so the frame also goes through the streaming decryption path.
    for (let i = 0; i < frame.length; i += 1000) decoder.push(frame.subarray(i, i + 1000));
    assert.deepEqual(decoder.next(), msg);
    assert.equal(compressionStats().decompressed.zstd, before + 1);
  });

  test('a declared size above MAX_PLAINTEXT is ERR_DECOMPRESSED_TOO_LARGE, before decompressing', () => {
    const frame = zstdFrame(encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(100) }));
    throwsCode(() => decodeBody(zstdBody(MAX_PLAINTEXT + 1, frame)), 'ERR_DECOMPRESSED_TOO_LARGE');
    throwsCode(() => decodeBody(zstdBody(0xffff_ffff, frame)), 'ERR_DECOMPRESSED_TOO_LARGE');
  });

  test('a bomb (a small frame of 64 MiB) fails with ERR_DECOMPRESS and allocates at most its declared size', () => {
    const huge = Buffer.alloc(64 * 1024 * 1024);
    // A small window, so only the output bound stops it; and the default window (64 MiB, refused).
    const narrow = zstdFrame(huge, { [C.ZSTD_c_windowLog]: 17 });
    const wide = zstdFrame(huge);
    huge.fill(1, 0, 1); // keeps `huge` live but changes nothing above
    assert.ok(narrow.length < 64 * 1024 && wide.length < 64 * 1024);
    for (const [frame, why] of [
      [narrow, /expands beyond its declared 262150 bytes/],
      [wide, /corrupt/],
    ] as const) {
      const before = process.memoryUsage().arrayBuffers;
      const err = throwsCode(() => decodeBody(zstdBody(MAX_PLAINTEXT, frame)), 'ERR_DECOMPRESS');
      const grew = process.memoryUsage().arrayBuffers - before;
      assert.match(err.message, why);
      if (frame === wide) {
        // Refused for its window, before the decoder allocated it.
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ZSTD_error_frameParameter_windowTooLarge');
      }
      // Unbounded, the 64 MiB would be held (as chunks) until the error; bounded, at most MAX_PLAINTEXT.
      assert.ok(grew < 8 * 1024 * 1024, `decoding the bomb grew array buffers by ${grew} bytes`);
    }
  });

  test('a frame that gives fewer or more bytes than declared is ERR_DECOMPRESS; the true size decodes', () => {
    const plaintext = encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(200, 'ab') });
    const frame = zstdFrame(plaintext);
    throwsCode(() => decodeBody(zstdBody(plaintext.length - 1, frame)), 'ERR_DECOMPRESS');
    throwsCode(() => decodeBody(zstdBody(plaintext.length + 1, frame)), 'ERR_DECOMPRESS');
    throwsCode(() => decodeBody(zstdBody(0, frame)), 'ERR_DECOMPRESS');
    assert.deepEqual(decodeBody(zstdBody(plaintext.length, frame)), decodeMessage(plaintext));
  });

  test('truncated, corrupt or missing frames, and a body shorter than the size prefix, are ERR_DECOMPRESS', () => {
    const plaintext = encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(300, 'xyz') });
    const frame = zstdFrame(plaintext);
    const n = plaintext.length;
    throwsCode(() => decodeBody(zstdBody(n, frame.subarray(0, frame.length - 3))), 'ERR_DECOMPRESS');
    const flipped = Buffer.from(frame);
    flipped[0] = flipped[0]! ^ 0xff; // the magic number
    throwsCode(() => decodeBody(zstdBody(n, flipped)), 'ERR_DECOMPRESS');
    throwsCode(() => decodeBody(zstdBody(n, randomBytes(64))), 'ERR_DECOMPRESS');
    throwsCode(() => decodeBody(zstdBody(n, Buffer.alloc(0))), 'ERR_DECOMPRESS');
    for (const short of [Buffer.of(Codec.zstd), Buffer.of(Codec.zstd, 1), Buffer.of(Codec.zstd, 1, 2, 3)]) {
      throwsCode(() => decodeBody(short), 'ERR_DECOMPRESS');
    }
    const errors = compressionStats().errors.decompress;
    throwsCode(() => decodeBody(zstdBody(n, flipped)), 'ERR_DECOMPRESS');
    assert.equal(compressionStats().errors.decompress, errors + 1, 'counted for mtt_frame_errors_total');
  });

  test('zstdCompress writes the plaintext length, then a frame node:zlib reads back', () => {
    const input = jsonLogCorpus(10_000);
    const out = zstdCompress(input);
    assert.equal(out.readUInt32LE(0), input.length);
    assert.deepEqual(zlib.zstdDecompressSync(out.subarray(4)), input);
  });
});

describe('the encoder sends codec 2 only when given zstd', () => {
  const text = (): Message => ({
    type: 'Data',
    fin: false,
    payload: jsonLogCorpus(64 * 1024).subarray(0, 64 * 1024),
  });
  const codecsOf = (encoder: FrameEncoder, keys: ReturnType<typeof randomKeys>, n: number) => {
    const codecs: number[] = [];
    for (let i = 0; i < n; i++) codecs.push(openFrame(keys, BigInt(i), encoder.encodeToBuffer(text()))[0]!);
    return codecs;
  };

  test('by default (and in every mode) an encoder compresses with LZ4', () => {
    for (const compression of ['auto', 'always', 'never'] as const) {
      const keys = randomKeys();
      const encoder = new FrameEncoder({ compression });
      encoder.setKeys(keys);
      assert.equal(encoder.codec, 'lz4');
      const codecs = codecsOf(encoder, keys, 5);
      assert.ok(!codecs.includes(Codec.zstd), `${compression}: ${codecs}`);
      assert.equal(encoder.frames.zstd, 0);
    }
  });

  test('setCompression switches the codec per tunnel, and back to LZ4 when not given zstd', {
    skip: !zstdAvailable() && 'no zstd',
  }, () => {
    const keys = randomKeys();
    const encoder = new FrameEncoder({ compression: 'always' });
    encoder.setKeys(keys);
    encoder.setCompression('always', 'zstd');
    assert.equal(openFrame(keys, 0n, encoder.encodeToBuffer(text()))[0], Codec.zstd);
    encoder.setCompression('always');
    assert.equal(openFrame(keys, 1n, encoder.encodeToBuffer(text()))[0], Codec.lz4);
    encoder.setCompression('never', 'zstd');
    assert.equal(openFrame(keys, 2n, encoder.encodeToBuffer(text()))[0], Codec.stored);
    assert.deepEqual(encoder.frames, { stored: 1, lz4: 1, zstd: 1 });
  });

  test('zstd is used only when strictly shorter: random data is stored', {
    skip: !zstdAvailable() && 'no zstd',
  }, () => {
    const keys = randomKeys();
    const encoder = new FrameEncoder({ compression: 'auto', codec: 'zstd' });
    encoder.setKeys(keys);
    for (let i = 0; i < 20; i++) {
      const frame = encoder.encodeToBuffer({ type: 'Data', fin: false, payload: randomBytes(4096) });
      assert.ok(frame.length <= 4 + 1 + 6 + 4096 + 16, 'never longer than stored');
    }
    assert.equal(encoder.frames.zstd, 0);
    assert.equal(encoder.frames.stored, 20);
  });
});

test('MTT_COMPRESSION=always makes an auto encoder given zstd try it on every frame', {
  skip: !zstdAvailable() && 'no zstd',
}, () => {
  const codec = new URL('../../src/protocol/frame-codec.js', import.meta.url).href;
  const script = `
    const { FrameEncoder } = await import(${JSON.stringify(codec)});
    const enc = new FrameEncoder({ compression: 'auto' });
    enc.setKeys({ key: Buffer.alloc(32, 1), nonceBase: Buffer.alloc(4, 2) });
    enc.setCompression('auto', 'zstd');
    const text = Buffer.from('{"level":"info","msg":"tunnel open"}\\n'.repeat(100));
    for (let i = 0; i < 3; i++) enc.encode({ type: 'Data', fin: false, payload: text });
    console.log(JSON.stringify({ mode: enc.compression, frames: enc.frames }));`;
  const out = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, MTT_COMPRESSION: 'always' },
    }),
  ) as { mode: string; frames: unknown };
  assert.deepEqual(out, { mode: 'always', frames: { stored: 0, lz4: 0, zstd: 3 } });
});
