/** zstd frames made by node:zlib with a chosen window, for bombs the sender itself would never make. */
import * as zlib from 'node:zlib';

/** `input` as one zstd frame at level 1 with a window of 2^windowLog bytes. */
export function zstdFrameSync(input: Buffer, windowLog: number): Buffer {
  const C = zlib.constants;
  return zlib.zstdCompressSync(input, {
    params: { [C.ZSTD_c_compressionLevel]: 1, [C.ZSTD_c_windowLog]: windowLog },
  });
}
