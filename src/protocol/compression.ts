/**
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
 * Metrics read compressionStats(): the backend in use and how many bodies failed to decompress, by
 * reason (the `mtt_frame_errors_total{reason}` counter's LZ4 part).
 */
import { createRequire } from 'node:module';
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
  errors: {
    /** A corrupt block, or one that gave a size other than it declared. */
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
  return { backend, fallback, errors: { ...errors } };
}

/** Bytes of the size prefix. */
export const LZ4_SIZE_PREFIX_LEN = 4;

/** Compresses `input` into a size-prefixed LZ4 block. */
export function lz4Compress(input: Buffer): Buffer {
  return lib().compress(input);
}

/** Decompresses a size-prefixed LZ4 block whose declared size must not exceed `maxSize`. */
export function lz4Decompress(input: Buffer, maxSize: number): Buffer {
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
  return out;
}
