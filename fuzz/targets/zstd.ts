/**
 * The receiver's zstd checks (codec 2): zstdDecompress on size-prefixed frames from the real sender
 * (zstdCompress) and from node:zlib with other windows, changed where a decoder trusts them: the
 * size prefix (honest ±1, 0, the cap, above it), the frame header (descriptor, window, content
 * size), block headers, truncation, trailing bytes; and bombs, small frames that expand far beyond
 * what they declare. Properties: only coded errors; what it accepts is exactly the declared size,
 * at most MAX_PLAINTEXT, and the bytes node:zlib gives for that frame; an unchanged frame from the
 * sender decodes to its plaintext; no case makes it hold more than a few MiB of buffers.
 */
import * as zlib from 'node:zlib';
import { zstdAvailable, zstdCompress, zstdDecompress } from '../../src/protocol/compression.js';
import { MAX_PLAINTEXT } from '../../src/protocol/limits.js';
import { havoc } from '../lib/mutate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';
import { zstdFrameSync } from '../lib/zstd-frames.js';

/** Buffers a case may leave held at its end: the declared size and change, not a bomb's output. */
const MAX_GROWTH = 8 * 1024 * 1024;

function plain(rng: Rng): Buffer {
  const n = rng.smallLen(rng.chance(0.1) ? MAX_PLAINTEXT : 4096);
  const r = rng.int(4);
  if (r === 0) return rng.bytes(n);
  if (r === 1) return Buffer.alloc(n, rng.int(256));
  const words = ['mtt ', '{"level":"info","msg":"tunnel open"}\n', 'GET / HTTP/1.1\r\n', '\0\0\0\0'];
  let s = '';
  while (s.length < n) s += rng.pick(words);
  return Buffer.from(s.slice(0, n));
}

interface ZstdInput {
  /** The size-prefixed body after the codec byte. */
  body: Buffer;
  /** The plaintext when `body` is the sender's unchanged output, else empty. */
  honest: Buffer;
  changed: boolean;
}

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

let bombs: Buffer[] | undefined;
/** Frames of 1 and 16 MiB of zeros, each in a window the receiver accepts and in one it refuses. */
function bombFrames(): Buffer[] {
  bombs ??= [1, 16].flatMap((mib) => {
    const huge = Buffer.alloc(mib * 1024 * 1024);
    return [17, 19, 24].map((w) => zstdFrameSync(huge, w));
  });
  return bombs;
}

function generate(rng: Rng): ZstdInput {
  const p = plain(rng);
  const body = zstdCompress(p);
  const r = rng.int(8);
  if (r === 0) return { body, honest: p, changed: false };
  const out = Buffer.from(body);
  if (r === 1) {
    const now = out.readUInt32LE(0);
    const v = rng.pick([0, 1, now - 1, now + 1, now * 2, MAX_PLAINTEXT, MAX_PLAINTEXT + 1, 0xffffffff]);
    out.writeUInt32LE(Math.max(0, Math.min(0xffffffff, v)) >>> 0, 0);
    return { body: out, honest: Buffer.alloc(0), changed: true };
  }
  if (r === 2 && out.length > 8) {
    // Frame header: descriptor at 8, then window descriptor / content size; or any early byte.
    const at = 8 + rng.int(Math.min(out.length - 8, 10));
    out[at] = rng.pick([0x00, 0xff, 0x20, 0x60, 0xa0, 0xe0, 0xc0, 0x7f, out[at]! ^ 1, out[at]! ^ 0x80]);
    return { body: out, honest: Buffer.alloc(0), changed: true };
  }
  if (r === 3) {
    // A bomb: small, declaring the cap or its true size or a little, expanding to megabytes.
    const frame = rng.pick(bombFrames());
    const declared = rng.pick([MAX_PLAINTEXT, 0, 1, 1024 * 1024, 0xffffffff]);
    return { body: Buffer.concat([le32(declared), frame]), honest: Buffer.alloc(0), changed: true };
  }
  if (r === 4) {
    return { body: out.subarray(0, rng.int(out.length)), honest: Buffer.alloc(0), changed: true };
  }
  if (r === 5) {
    // Trailing bytes, or a second frame, after the first.
    const tail = rng.chance(0.5) ? rng.bytes(1 + rng.int(16)) : zstdCompress(plain(rng)).subarray(4);
    return { body: Buffer.concat([out, tail]), honest: Buffer.alloc(0), changed: true };
  }
  if (r === 6) {
    // Another window and level than the sender's, honestly prefixed.
    const frame = zstdFrameSync(p, rng.pick([10, 17, 19, 20, 22]));
    return { body: Buffer.concat([le32(p.length), frame]), honest: Buffer.alloc(0), changed: true };
  }
  return { body: havoc(out, rng, 3), honest: Buffer.alloc(0), changed: true };
}

/** What node:zlib makes of the frame, bounded, by the codec's rule (exactly the declared size). */
function reference(body: Buffer): Buffer | undefined {
  if (body.length < 4) return undefined;
  const declared = body.readUInt32LE(0);
  if (declared > MAX_PLAINTEXT) return undefined;
  try {
    const out = zlib.zstdDecompressSync(body.subarray(4), { maxOutputLength: MAX_PLAINTEXT + 1 });
    return out.length === declared ? out : undefined;
  } catch {
    return undefined;
  }
}

function execute(input: ZstdInput): void {
  const before = process.memoryUsage().arrayBuffers;
  let ours: Buffer | undefined;
  try {
    ours = zstdDecompress(input.body, MAX_PLAINTEXT);
  } catch (err) {
    expectCoded(err);
  }
  const grew = process.memoryUsage().arrayBuffers - before;
  if (grew > MAX_GROWTH) {
    throw new OracleError(
      `decoding a ${input.body.length}-byte zstd body held ${grew} more bytes of buffers`,
    );
  }
  if (!input.changed) {
    if (!ours?.equals(input.honest)) {
      throw new OracleError(
        `the sender's own ${input.honest.length}-byte frame did not decode to its plaintext`,
      );
    }
    return;
  }
  if (ours === undefined) return;
  const declared = input.body.readUInt32LE(0);
  if (ours.length !== declared || declared > MAX_PLAINTEXT) {
    throw new OracleError(`zstdDecompress accepted ${ours.length} bytes for a body declaring ${declared}`);
  }
  // Where it accepts, node:zlib (without our window bound) must give the same bytes.
  const theirs = reference(input.body);
  if (!theirs?.equals(ours)) {
    throw new OracleError(
      `zstdDecompress and node:zlib disagree on a ${input.body.length}-byte body declaring ${declared}`,
    );
  }
}

/** zstd bodies, bombs and lies about the size. */
export const zstd: Target<ZstdInput> = {
  name: 'zstd',
  about:
    "zstdDecompress on the sender's frames changed in the size prefix, frame and block headers, truncated, with trailing bytes, and bombs: only coded errors, exactly the declared size, node:zlib's bytes, bounded buffers",
  weight: 40_000,
  hangMs: 3000,
  setup: () => {
    if (!zstdAvailable()) throw new Error('the zstd target needs Node 22.15 or later (node:zlib zstd)');
    bombFrames();
  },
  generate,
  execute,
};
