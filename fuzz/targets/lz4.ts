/**
 * The codec's LZ4 fallback against the native library: lz4Decompress running on lz4-wasm-nodejs
 * (its worker has MTT_LZ4=wasm) beside lz4-napi called directly, on size-prefixed blocks from the
 * real compressor changed where a decoder trusts them: token nibbles, length extensions, match
 * offsets, the size prefix. Both must accept the same blocks with the same bytes (a peer must not
 * be able to tell the fallback from the native build, and the fallback must not hand out memory it
 * never wrote); lz4Decompress only ever fails with a coded error.
 */
import { createRequire } from 'node:module';
import { compressionStats, lz4Compress, lz4Decompress } from '../../src/protocol/compression.js';
import { MAX_PLAINTEXT } from '../../src/protocol/limits.js';
import { havoc } from '../lib/mutate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';

const require = createRequire(import.meta.url);
const native = require('lz4-napi') as typeof import('lz4-napi');

function plain(rng: Rng): Buffer {
  const n = rng.smallLen(rng.chance(0.1) ? 70_000 : 4096);
  const r = rng.int(4);
  if (r === 0) return rng.bytes(n);
  if (r === 1) return Buffer.alloc(n, rng.int(256));
  const words = ['mtt ', 'GET / HTTP/1.1\r\n', '{"a":1}', '\0\0\0\0', 'tunnel'];
  let s = '';
  while (s.length < n) s += rng.pick(words);
  return Buffer.from(s.slice(0, n));
}

interface Lz4Input {
  block: Buffer;
}

function generate(rng: Rng): Lz4Input {
  let block: Buffer = native.compressSync(plain(rng));
  const r = rng.int(6);
  if (r === 0) return { block };
  if (r === 1) {
    // The size prefix: honest ±1, 0, the cap, above it.
    const now = block.readUInt32LE(0);
    block = Buffer.from(block);
    block.writeUInt32LE(
      Math.max(
        0,
        Math.min(
          MAX_PLAINTEXT + 1,
          rng.pick([0, 1, now - 1, now + 1, now * 2, MAX_PLAINTEXT, MAX_PLAINTEXT + 1]),
        ),
      ) >>> 0,
      0,
    );
    return { block };
  }
  if (r === 2 && block.length > 5) {
    // A token: literal and match nibbles at their extremes.
    block = Buffer.from(block);
    block[4] = rng.pick([0x00, 0x0f, 0xf0, 0xff, 0x1f, 0xf1]);
    return { block };
  }
  if (r === 3 && block.length > 8) {
    // A match offset somewhere: zero, one, far back.
    block = Buffer.from(block);
    const at = 5 + rng.int(block.length - 6);
    block.writeUInt16LE(rng.pick([0, 1, 0xffff, 2, (block.readUInt16LE(at) + 1) & 0xffff]), at);
    return { block };
  }
  if (r === 4) return { block: block.subarray(0, Math.max(4, rng.int(block.length))) };
  return { block: havoc(block, rng, 3) };
}

/** What the native library makes of a block, by the codec's rule (exactly the declared size). */
function nativeVerdict(block: Buffer): Buffer | undefined {
  if (block.length < 4 || block.readUInt32LE(0) > MAX_PLAINTEXT) return undefined;
  try {
    const out = native.uncompressSync(block);
    return out.length === block.readUInt32LE(0) ? out : undefined;
  } catch {
    return undefined;
  }
}

function execute(input: Lz4Input): void {
  const { block } = input;
  let ours: Buffer | undefined;
  try {
    ours = lz4Decompress(block, MAX_PLAINTEXT);
  } catch (err) {
    expectCoded(err);
  }
  const theirs = nativeVerdict(block);
  if ((ours === undefined) !== (theirs === undefined) || (ours && theirs && !ours.equals(theirs))) {
    throw new OracleError(
      `lz4Decompress on ${compressionStats().backend} and lz4-napi disagree on a ${block.length}-byte block declaring ${block.readUInt32LE(0)}: ` +
        `${compressionStats().backend} ${ours ? 'accepts' : 'refuses'}, lz4-napi ${theirs ? 'accepts' : 'refuses'}${ours && theirs ? ' (different bytes)' : ''}`,
    );
  }
}

/** Native and WASM LZ4, side by side. */
export const lz4: Target<Lz4Input> = {
  name: 'lz4',
  about:
    'lz4-napi vs lz4-wasm-nodejs on real blocks changed in tokens, lengths, offsets and the size prefix: the same verdict and bytes; lz4Decompress only coded errors',
  weight: 40_000,
  hangMs: 3000,
  env: { MTT_LZ4: 'wasm' },
  setup: () => {
    lz4Compress(Buffer.from('mtt'));
    if (compressionStats().backend !== 'lz4-wasm-nodejs')
      throw new Error('the lz4 target must run the WASM fallback (MTT_LZ4=wasm)');
  },
  generate,
  execute,
};
