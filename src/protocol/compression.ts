/**
 * LZ4 for frame bodies. A compressed body is an LZ4 block preceded by its decompressed size as u32
 * little-endian (the layout of lz4_flex's `compress_prepend_size` and python-lz4's
 * `lz4.block.compress(store_size=True)`). The size is checked against the cap before the block is
 * decompressed, so a small frame can never make us allocate more than MAX_PLAINTEXT.
 */
import { createRequire } from 'node:module';
import { ProtocolError } from './errors.js';

type Lz4 = typeof import('lz4-napi');
let lz4: Lz4 | undefined;
/** The native LZ4 library, loaded on first use: about 10 MB of RSS a process that never compresses
 * (small frames only) does not pay. */
function lib(): Lz4 {
  lz4 ??= createRequire(import.meta.url)('lz4-napi') as Lz4;
  return lz4;
}

/** Bytes of the size prefix. */
export const LZ4_SIZE_PREFIX_LEN = 4;

/** Compresses `input` into a size-prefixed LZ4 block. */
export function lz4Compress(input: Buffer): Buffer {
  return lib().compressSync(input);
}

/** Decompresses a size-prefixed LZ4 block whose declared size must not exceed `maxSize`. */
export function lz4Decompress(input: Buffer, maxSize: number): Buffer {
  if (input.length < LZ4_SIZE_PREFIX_LEN) {
    throw new ProtocolError('ERR_DECOMPRESS', 'compressed body is shorter than its size prefix');
  }
  const declared = input.readUInt32LE(0);
  if (declared > maxSize) {
    throw new ProtocolError(
      'ERR_DECOMPRESSED_TOO_LARGE',
      `compressed body declares ${declared} bytes; the limit is ${maxSize}`,
    );
  }
  let out: Buffer;
  try {
    out = lib().uncompressSync(input);
  } catch (cause) {
    throw new ProtocolError('ERR_DECOMPRESS', 'corrupt LZ4 block', { cause });
  }
  if (out.length !== declared) {
    throw new ProtocolError('ERR_DECOMPRESS', `LZ4 block gave ${out.length} bytes, declared ${declared}`);
  }
  return out;
}
