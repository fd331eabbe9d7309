/**
 * The body codecs: LZ4 (codec 1) and zstd (codec 2). LZ4 is first:
 *
 * LZ4 for frame bodies. A compressed body is an LZ4 block preceded by its decompressed size as u32
 * little-endian (the layout of lz4_flex's `compress_prepend_size` and python-lz4's
 * `lz4.block.compress(store_size=True)`). The size is checked against the cap before the block is
 * decompressed, so a small frame can never make us allocate more than MAX_PLAINTEXT.
 *
 * Two implementations speak that format: the native `lz4-napi` (faster; a prebuilt binary per
 * platform) and `lz4-wasm-nodejs` (lz4_flex compiled to WebAssembly; runs wherever Node runs). The
 * native one is used when it loads; when it cannot (no prebuilt binary for the platform, or a
 * minimal image without the C library it links against), the WASM one takes over and
 * onLz4Fallback() listeners hear about it once, with the platform and the reason. `MTT_LZ4=wasm`
 * chooses the WASM build, `MTT_LZ4=native` refuses to fall back. Either is loaded on first use: a
 * process that never compresses (small frames only) does not pay their 4-5 MB of RSS.
 *
 * zstd (codec 2, negotiated per tunnel and off by default) is node:zlib's, from Node 22.15: no package
 * to install. Its body has the same layout, the decompressed size as u32 LE then one zstd frame, and
 * the same checks before and after decompressing (zstdDecompress below).
 *
 * Metrics read compressionStats(): the backend in use and how many bodies failed to decompress, by
 * reason (the `mtt_frame_errors_total{reason}` counter's decompression part, both codecs).
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { ProtocolError } from './errors.js';

/** What both implementations offer, in the size-prefixed block format. */
interface Lz4Impl {
  compress(input: Buffer): Buffer;
  decompress(input: Buffer): Buffer;
}

/** The LZ4 implementation in use. */
export type Lz4BackendName = 'lz4-napi' | 'lz4-wasm-nodejs';

/** Told once when the native binding could not load and the WASM build is used instead. */
export interface Lz4Fallback {
  /** `linux-x64-glibc`, `linux-arm64-musl`, `darwin-arm64`, … */
  platform: string;
  /** Why lz4-napi did not load (its error message). */
  reason: string;
}

/** Neither LZ4 implementation can be used: a broken install. The message names the package to install. */
export class Lz4UnavailableError extends Error {
  override readonly name = 'Lz4UnavailableError';
  readonly code = 'ERR_LZ4_UNAVAILABLE';
}

/** Counts of bodies that failed to decompress, by reason. */
export interface CompressionStats {
  /** The implementation in use, or undefined before the first (de)compression. */
  backend: Lz4BackendName | undefined;
  /** Set when the WASM build replaced the native binding. */
  fallback: Lz4Fallback | undefined;
  /** Bodies decompressed, by codec: what the peers chose to send (tests, metrics). */
  decompressed: { lz4: number; zstd: number };
  errors: {
    /** A corrupt block (LZ4 or zstd), or one that gave a size other than it declared. */
    decompress: number;
    /** A block declaring more than the limit. */
    decompressedTooLarge: number;
  };
}

const require = createRequire(import.meta.url);
let impl: Lz4Impl | undefined;
let backend: Lz4BackendName | undefined;
let fallback: Lz4Fallback | undefined;
const errors = { decompress: 0, decompressedTooLarge: 0 };
const decompressed = { lz4: 0, zstd: 0 };
const fallbackListeners = new Set<(info: Lz4Fallback) => void>();

/** The platform name a user looks for in the list of prebuilt binaries. */
export function platformName(): string {
  let libc = '';
  if (process.platform === 'linux') {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
      ?.header;
    libc = header?.glibcVersionRuntime ? '-glibc' : '-musl';
  }
  return `${process.platform}-${process.arch}${libc}`;
}

function loadNative(): Lz4Impl {
  const m = require('lz4-napi') as typeof import('lz4-napi');
  // Prove the binding works, not only that its file exists (a missing shared library fails here).
  m.uncompressSync(m.compressSync(Buffer.from('mtt')));
  return { compress: (b) => m.compressSync(b), decompress: (b) => m.uncompressSync(b) };
}

function loadWasm(): Lz4Impl {
  const m = require('lz4-wasm-nodejs') as {
    compress(i: Uint8Array): Uint8Array;
    decompress(i: Uint8Array): Uint8Array;
  };
  const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return {
    compress: (b) => asBuffer(m.compress(b)),
    decompress: (b) => {
      refuseZeroOffset(b);
      try {
        return asBuffer(m.decompress(b));
      } catch (e) {
        // wasm-bindgen throws the Rust error as a string; make it an Error for the ProtocolError cause.
        throw e instanceof Error ? e : new Error(String(e));
      }
    },
  };
}

/**
 * lz4-wasm-nodejs 0.9.2 (built on lz4_flex before 0.11.6, RUSTSEC-2026-0041) accepts a match with
 * offset 0 and copies it from output memory it never wrote: bytes of earlier decompressions, other
 * connections' plaintext, come out. The block format says offset 0 is invalid (lz4-napi refuses it),
 * so the WASM build never sees such a block. Found by the fuzzer (the lz4 target). A size-prefixed
 * block is walked sequence by sequence; a truncated one is left for the decoder to refuse.
 */
function refuseZeroOffset(sized: Buffer): void {
  let i = LZ4_SIZE_PREFIX_LEN;
  while (i < sized.length) {
    const token = sized[i++]!;
    let literals = token >> 4;
    if (literals === 15) {
      for (let x = 255; x === 255; literals += x) {
        if (i >= sized.length) return;
        x = sized[i++]!;
      }
    }
    i += literals;
    // The last sequence has literals only; fewer than two bytes left is a truncated block.
    if (i + 2 > sized.length) return;
    if (sized[i] === 0 && sized[i + 1] === 0) throw new Error('LZ4 match offset 0 is invalid');
    i += 2;
    if ((token & 15) === 15) {
      for (let x = 255; x === 255; ) {
        if (i >= sized.length) return;
        x = sized[i++]!;
      }
    }
  }
}

function lib(): Lz4Impl {
  if (impl !== undefined) return impl;
  const choice = process.env.MTT_LZ4;
  if (choice === 'wasm') {
    impl = loadWasm();
    backend = 'lz4-wasm-nodejs';
    return impl;
  }
  try {
    impl = loadNative();
    backend = 'lz4-napi';
    return impl;
  } catch (err) {
    const reason = (err as Error).message?.split('\n')[0] ?? String(err);
    if (choice === 'native') {
      throw new Lz4UnavailableError(
        `the native LZ4 binding (lz4-napi) cannot load on ${platformName()}: ${reason}; unset MTT_LZ4 to use the WASM build`,
        { cause: err },
      );
    }
    try {
      impl = loadWasm();
    } catch (wasmErr) {
      throw new Lz4UnavailableError(
        `no LZ4 implementation can load on ${platformName()}: lz4-napi: ${reason}; lz4-wasm-nodejs: ` +
          `${(wasmErr as Error).message}; reinstall minitcptunnel (npm install -g minitcptunnel) so that its dependency lz4-wasm-nodejs is present`,
        { cause: wasmErr },
      );
    }
    backend = 'lz4-wasm-nodejs';
    fallback = { platform: platformName(), reason };
    if (fallbackListeners.size === 0) {
      // An embedding program that did not subscribe still hears it once, through Node's warnings.
      process.emitWarning(fallbackMessage(fallback), { code: 'MTT_LZ4_FALLBACK' });
    }
    for (const listener of fallbackListeners) listener(fallback);
    return impl;
  }
}

/** The one-line warning for a fallback. */
export function fallbackMessage(info: Lz4Fallback): string {
  return (
    `the native LZ4 binding (lz4-napi) cannot load on ${info.platform} (${info.reason}); ` +
    'using the WASM build (lz4-wasm-nodejs) instead: the same format, somewhat slower'
  );
}

/** Calls `listener` once if (and when) the WASM build replaces the native binding; returns an unsubscribe. */
export function onLz4Fallback(listener: (info: Lz4Fallback) => void): () => void {
  if (fallback !== undefined) {
    listener(fallback);
    return () => {};
  }
  fallbackListeners.add(listener);
  return () => fallbackListeners.delete(listener);
}

/**
 * Checks at start-up, without loading either implementation, that one will be there when the first
 * frame is compressed; throws Lz4UnavailableError naming the package to install. (A binding that is
 * present but cannot load is caught at first use and replaced by the WASM build.)
 */
export function assertLz4Available(): void {
  const choice = process.env.MTT_LZ4;
  if (choice !== undefined && choice !== 'wasm' && choice !== 'native') {
    throw new Lz4UnavailableError(`MTT_LZ4 must be "wasm" or "native", not "${choice}"; or unset it`);
  }
  const present = (name: string) => {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  };
  if (choice === 'native' ? present('lz4-napi') : present('lz4-wasm-nodejs')) return;
  // The fallback is missing: only a working native binding can save the start.
  if (choice !== 'wasm') {
    try {
      lib();
      return;
    } catch {
      // Reported below.
    }
  }
  const missing = choice === 'native' ? 'lz4-napi' : 'lz4-wasm-nodejs';
  throw new Lz4UnavailableError(
    `the LZ4 package ${missing} is not installed; reinstall minitcptunnel (npm install -g minitcptunnel)`,
  );
}

/**
 * Loads the LZ4 implementation now instead of at the first compressed frame, so that a long-running
 * command reports a fallback when it starts. The sender compresses only while a link backs up, so
 * the first compressed frame may come much later, or never (docs/PROTOCOL.md).
 */
export function preloadLz4(): void {
  lib();
}

/** The backend and the decompression error counts (for metrics). */
export function compressionStats(): CompressionStats {
  return { backend, fallback, decompressed: { ...decompressed }, errors: { ...errors } };
}

/** Bytes of the size prefix. */
export const LZ4_SIZE_PREFIX_LEN = 4;

/** Compresses `input` into a size-prefixed LZ4 block. */
export function lz4Compress(input: Buffer): Buffer {
  return lib().compress(input);
}

/**
 * The decompressed size a body declares (its u32 LE prefix), checked before anything is
 * decompressed: both codecs refuse a body too short for it and a size above `maxSize`.
 */
function declaredSize(input: Buffer, maxSize: number): number {
  if (input.length < LZ4_SIZE_PREFIX_LEN) {
    errors.decompress += 1;
    throw new ProtocolError('ERR_DECOMPRESS', 'compressed body is shorter than its size prefix');
  }
  const declared = input.readUInt32LE(0);
  if (declared > maxSize) {
    errors.decompressedTooLarge += 1;
    throw new ProtocolError(
      'ERR_DECOMPRESSED_TOO_LARGE',
      `compressed body declares ${declared} bytes; the limit is ${maxSize}`,
    );
  }
  return declared;
}

/** Decompresses a size-prefixed LZ4 block whose declared size must not exceed `maxSize`. */
export function lz4Decompress(input: Buffer, maxSize: number): Buffer {
  const declared = declaredSize(input, maxSize);
  const codec = lib();
  let out: Buffer;
  try {
    out = codec.decompress(input);
  } catch (cause) {
    errors.decompress += 1;
    throw new ProtocolError('ERR_DECOMPRESS', 'corrupt LZ4 block', { cause });
  }
  if (out.length !== declared) {
    errors.decompress += 1;
    throw new ProtocolError('ERR_DECOMPRESS', `LZ4 block gave ${out.length} bytes, declared ${declared}`);
  }
  decompressed.lz4 += 1;
  return out;
}

/**
 * The zstd level a sender compresses with: on the benchmark's JSON log corpus in 256 KiB pieces (one
 * core, Node 24) level 3 gives 6.9x at ~180 MB/s, 4 gives 7.7x at ~95 MB/s, 6 gives 8.2x at ~57 MB/s
 * and 9 gives 8.4x at ~40 MB/s (LZ4: 4.4x). zstd is for slow links, where 57 MB/s of input is far
 * more than the link carries, and 6 is the lowest level above the 7.7x of ssh's session-long zlib.
 */
export const ZSTD_LEVEL = 6;

/**
 * The largest zstd window a receiver accepts, as log2: 2^19 = 512 KiB covers MAX_PLAINTEXT (a
 * one-shot frame of n bytes needs a window of at most n). A frame asking for more (up to 128 MiB
 * by default) is refused before the decoder allocates its window.
 */
export const ZSTD_WINDOW_LOG_MAX = 19;

/**
 * Whether this Node has zstd in node:zlib (22.15 and later). `MTT_ZSTD=off` makes the process behave
 * as one without it (the tests run that case on any Node).
 */
export function zstdAvailable(): boolean {
  if (process.env.MTT_ZSTD === 'off') return false;
  return typeof zlib.zstdCompressSync === 'function' && typeof zlib.zstdDecompressSync === 'function';
}

/** What a user reads when a tunnel asks for zstd on a Node without it. */
export function zstdUnavailableMessage(): string {
  return `compression "zstd" needs Node.js 22.15 or later (this is ${process.version}); use true for LZ4`;
}

const ZSTD_COMPRESS_OPTIONS = { params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } };

/** Compresses `input` into a size-prefixed zstd frame (codec 2). Throws when zstdAvailable() is false. */
export function zstdCompress(input: Buffer): Buffer {
  const frame = zlib.zstdCompressSync(input, ZSTD_COMPRESS_OPTIONS);
  const out = Buffer.allocUnsafe(LZ4_SIZE_PREFIX_LEN + frame.length);
  out.writeUInt32LE(input.length, 0);
  frame.copy(out, LZ4_SIZE_PREFIX_LEN);
  return out;
}

/**
 * Decompresses a size-prefixed zstd frame whose declared size must not exceed `maxSize`. The output
 * is bounded by the declared size (maxOutputLength) and the window by ZSTD_WINDOW_LOG_MAX, so a
 * small body that expands further (a bomb) fails with ERR_DECOMPRESS having allocated at most the
 * declared size. Without zstd in this Node, codec 2 is an unknown codec (ERR_UNKNOWN_CODEC).
 */
export function zstdDecompress(input: Buffer, maxSize: number): Buffer {
  if (!zstdAvailable()) throw new ProtocolError('ERR_UNKNOWN_CODEC', 'body codec 2 (zstd) needs Node 22.15');
  const declared = declaredSize(input, maxSize);
  let out: Buffer;
  try {
    out = zlib.zstdDecompressSync(input.subarray(LZ4_SIZE_PREFIX_LEN), {
      // 0 means "no limit" to node:zlib; a frame declared empty may still give no byte at all.
      maxOutputLength: Math.max(1, declared),
      params: { [zlib.constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX },
    });
  } catch (cause) {
    errors.decompress += 1;
    // node:zlib stops at maxOutputLength with a RangeError: an expected refusal here (a bomb, or a
    // lie about the size), not a bug, so it is not kept as the cause.
    if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ProtocolError('ERR_DECOMPRESS', `zstd frame expands beyond its declared ${declared} bytes`);
    }
    throw new ProtocolError('ERR_DECOMPRESS', 'corrupt zstd frame', { cause });
  }
  if (out.length !== declared) {
    errors.decompress += 1;
    throw new ProtocolError('ERR_DECOMPRESS', `zstd frame gave ${out.length} bytes, declared ${declared}`);
  }
  decompressed.zstd += 1;
  return out;
}
