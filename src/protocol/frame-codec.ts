/**
 * The frame codec: a state machine with no socket. The encoder turns messages into frames; the decoder
 * is fed bytes split anywhere and hands back whole messages, or throws a coded ProtocolError.
 *
 * frame      = len u32 BE | body
 * body       = plaintext                                    (cleartext mode: hellos only)
 *            | AEAD(key, nonce_base | counter u64 BE, codec u8 | packed, aad = len)   (keyed mode)
 * packed     = plaintext                       when codec = 0 (stored)
 *            | size u32 LE | LZ4 block         when codec = 1 (LZ4)
 *            | size u32 LE | zstd frame        when codec = 2 (zstd; only on tunnels that negotiated it)
 *
 * Over 400 lines on purpose: the encoder and the decoder are the two halves of the one layout above
 * (length, nonce counter, codec byte, AEAD), and each is checked against the other line by line; kept
 * in one file, a change to the frame format cannot land on one side only.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type DecipherChaCha20Poly1305,
  type KeyObject,
} from 'node:crypto';
import { lz4Compress, lz4Decompress, zstdCompress, zstdDecompress } from './compression.js';
import { ProtocolError } from './errors.js';
import { MAX_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN, MAX_PAYLOAD, MAX_PLAINTEXT, TAG_LEN } from './limits.js';
import { dataFromPieces, decodeDataHeader, encodeMessageParts, type Message } from './messages.js';

/** The key and nonce base of one direction of one channel. */
export interface DirectionKeys {
  /** 32-byte ChaCha20-Poly1305 key. */
  key: Buffer;
  /** 4-byte nonce prefix. */
  nonceBase: Buffer;
}

/** Body codec byte values. */
export const Codec = { stored: 0, lz4: 1, zstd: 2 } as const;

/**
 * The codec a compressing encoder uses: 'lz4' unless the tunnel negotiated 'zstd' (OpenTunnel's and
 * TunnelStatus's ZSTD flags). An encoder never sends codec 2 unless it was given 'zstd'.
 */
export type CompressedCodec = 'lz4' | 'zstd';

/**
 * How the encoder picks a codec. 'auto' compresses while its link is the bottleneck (see LinkState;
 * always, when no link is attached) unless the data has proved incompressible; 'never' stores every
 * frame; 'always' tries every frame (tests, benchmarks).
 */
export type CompressionMode = 'auto' | 'always' | 'never';

/** What the encoder asks of the link its frames go to (src/transport/link-monitor.ts answers). */
export interface LinkState {
  /** True when bytes wait for the link: compressing them gets more data through. */
  linkBound(): boolean;
}

/**
 * `MTT_COMPRESSION=always` makes every `auto` encoder try its codec on every frame, backed up or not: for
 * tests and benchmarks that need compressed frames on an idle loopback. `never` stays `never`.
 */
const AUTO: CompressionMode = process.env.MTT_COMPRESSION === 'always' ? 'always' : 'auto';

/** Keyed frames at least this long are decrypted piece by piece when they arrive in several reads. */
const STREAM_MIN_LEN = 16 * 1024;
/** Plaintexts shorter than this are always stored: neither codec can win on them. */
export const MIN_COMPRESS_LEN = 64;
/** In 'auto' mode, a frame that compressed worse than this ratio counts as incompressible. */
const POOR_RATIO = 0.9;
/** After incompressible frames, skip compressing up to this many frames before trying again. */
const MAX_SKIP = 64;

const ALGO = 'chacha20-poly1305';
const U32 = 0x1_0000_0000;

/** A 64-bit counter kept as two u32 halves (no BigInt on the hot path). */
class Counter {
  hi = 0;
  lo = 0;
  constructor(initial = 0n) {
    if (initial < 0n || initial >= 1n << 64n) throw new RangeError('counter out of range');
    this.hi = Number(initial >> 32n);
    this.lo = Number(initial & 0xffff_ffffn);
  }
  /** Writes nonce_base | counter, then advances; refuses the last value so the counter never wraps. */
  nextNonce(nonceBase: Buffer): Buffer {
    if (this.hi === 0xffff_ffff && this.lo === 0xffff_ffff) {
      throw new ProtocolError('ERR_NONCE_EXHAUSTED', 'frame counter exhausted; the channel must be closed');
    }
    const nonce = Buffer.allocUnsafe(12);
    nonceBase.copy(nonce, 0, 0, 4);
    nonce.writeUInt32BE(this.hi, 4);
    nonce.writeUInt32BE(this.lo, 8);
    this.lo += 1;
    if (this.lo === U32) {
      this.lo = 0;
      this.hi += 1;
    }
    return nonce;
  }
}

/**
 * A direction's key as the cipher calls take it. A KeyObject made once: given a Buffer, Node makes
 * one inside every createCipheriv/createDecipheriv, which cost more than sealing a small frame.
 */
interface SealingKeys {
  key: KeyObject;
  nonceBase: Buffer;
}

function checkKeys(keys: DirectionKeys): SealingKeys {
  if (keys.key.length !== 32) throw new RangeError('key must be 32 bytes');
  if (keys.nonceBase.length !== 4) throw new RangeError('nonceBase must be 4 bytes');
  return { key: createSecretKey(keys.key), nonceBase: keys.nonceBase };
}

/** Turns messages into frames for one direction of one channel. */
export class FrameEncoder {
  #keys: SealingKeys | undefined;
  #counter = new Counter();
  #mode: CompressionMode;
  #skipLeft = 0;
  #backoff = 0;
  #link: LinkState | undefined;
  #codec: CompressedCodec;
  #stored = 0;
  #lz4 = 0;
  #zstd = 0;

  constructor(options: { compression?: CompressionMode; codec?: CompressedCodec; link?: LinkState } = {}) {
    this.#mode = (options.compression ?? 'auto') === 'auto' ? AUTO : options.compression!;
    this.#codec = options.codec ?? 'lz4';
    this.#link = options.link;
  }

  /** Keyed frames sent stored, LZ4-compressed and zstd-compressed (tests, metrics). */
  get frames(): { stored: number; lz4: number; zstd: number } {
    return { stored: this.#stored, lz4: this.#lz4, zstd: this.#zstd };
  }

  /** Switches to keyed mode: from now on every frame is compressed and encrypted. */
  setKeys(keys: DirectionKeys, initialCounter = 0n): void {
    this.#keys = checkKeys(keys);
    this.#counter = new Counter(initialCounter);
  }

  /**
   * Changes how later frames pick a codec: a data channel carries one tunnel's connection at a time,
   * and each tunnel says whether its frames may be compressed (OpenTunnel's NO_COMPRESS) and with
   * which codec (zstd when the tunnel negotiated it, else LZ4).
   */
  setCompression(requested: CompressionMode, codec: CompressedCodec = 'lz4'): void {
    const mode = requested === 'auto' ? AUTO : requested;
    if (mode === this.#mode && codec === this.#codec) return;
    this.#mode = mode;
    this.#codec = codec;
    this.#skipLeft = 0;
    this.#backoff = 0;
  }

  /** How this encoder picks a codec now. */
  get compression(): CompressionMode {
    return this.#mode;
  }

  /** The codec it compresses with when it compresses. */
  get codec(): CompressedCodec {
    return this.#codec;
  }

  /** Encodes one message as the buffers of one frame, in order (write them with cork/writev). */
  encode(msg: Message): Buffer[] {
    const parts = encodeMessageParts(msg);
    if (this.#keys === undefined) {
      const body = Buffer.concat(parts);
      if (body.length > MAX_HANDSHAKE_FRAME_LEN) {
        throw new RangeError(
          `cleartext ${msg.type} of ${body.length} bytes exceeds ${MAX_HANDSHAKE_FRAME_LEN}`,
        );
      }
      return [lenHeader(body.length), body];
    }
    return this.#seal(this.#keys, parts);
  }

  /** Encodes one message as one contiguous frame. */
  encodeToBuffer(msg: Message): Buffer {
    return Buffer.concat(this.encode(msg));
  }

  #seal(keys: SealingKeys, parts: Buffer[]): Buffer[] {
    let plainLen = 0;
    for (const p of parts) plainLen += p.length;
    let packed: Buffer[] | undefined;
    let codec: number = Codec.stored;
    if (this.#shouldTryCompression(plainLen)) {
      const input = parts.length === 1 ? parts[0]! : Buffer.concat(parts, plainLen);
      const zstd = this.#codec === 'zstd';
      const compressed = zstd ? zstdCompress(input) : lz4Compress(input);
      if (this.#mode === 'auto') this.#learn(compressed.length, plainLen);
      if (compressed.length < plainLen) {
        packed = [compressed];
        codec = zstd ? Codec.zstd : Codec.lz4;
      }
    }
    if (codec === Codec.lz4) this.#lz4 += 1;
    else if (codec === Codec.zstd) this.#zstd += 1;
    else this.#stored += 1;
    packed ??= parts;
    let bodyLen = 1;
    for (const p of packed) bodyLen += p.length;
    const frameLen = bodyLen + TAG_LEN;
    const header = lenHeader(frameLen);
    const nonce = this.#counter.nextNonce(keys.nonceBase);
    const cipher = createCipheriv(ALGO, keys.key, nonce, { authTagLength: TAG_LEN });
    cipher.setAAD(header, { plaintextLength: bodyLen });
    const out: Buffer[] = [header];
    // The codec byte rides with a small first part (the header), to save an update() call; a large
    // one (a compressed block) is not copied for it.
    const first = packed[0]!;
    if (first.length <= 64) {
      out.push(cipher.update(Buffer.concat([Buffer.of(codec), first])));
    } else {
      out.push(cipher.update(Buffer.of(codec)), cipher.update(first));
    }
    for (let i = 1; i < packed.length; i++) out.push(cipher.update(packed[i]!));
    cipher.final();
    out.push(cipher.getAuthTag());
    return out;
  }

  #shouldTryCompression(plainLen: number): boolean {
    if (this.#mode === 'never') return false;
    if (this.#mode === 'always') return true;
    if (plainLen < MIN_COMPRESS_LEN) return false;
    // The CPU, not the link, is the bottleneck: LZ4 would only cost time.
    if (this.#link !== undefined && !this.#link.linkBound()) return false;
    if (this.#skipLeft > 0) {
      this.#skipLeft -= 1;
      return false;
    }
    return true;
  }

  /** Backs off exponentially from data that does not compress, so it pays LZ4 on few of its frames. */
  #learn(compressedLen: number, plainLen: number): void {
    if (compressedLen > plainLen * POOR_RATIO) {
      this.#backoff = Math.min(MAX_SKIP, this.#backoff === 0 ? 1 : this.#backoff * 2);
      this.#skipLeft = this.#backoff;
    } else {
      this.#backoff = 0;
    }
  }
}

function lenHeader(n: number): Buffer {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32BE(n);
  return h;
}

/** Feeds bytes in, takes whole messages out. Once it has thrown, it stays failed. */
export class FrameDecoder<M extends Message = Message> {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #keys: SealingKeys | undefined;
  #counter = new Counter();
  #failed: ProtocolError | undefined;
  /** A keyed frame being decrypted as its bytes arrive, so a frame spread over reads is not copied. */
  #stream:
    | { decipher: DecipherChaCha20Poly1305; ctLeft: number; tag: Buffer; tagGot: number; out: Buffer[] }
    | undefined;
  readonly #decode: (plaintext: Buffer) => M;

  /** `decode` turns a plaintext into a message (decodeClientMessage or decodeServerMessage). */
  constructor(decode: (plaintext: Buffer) => M) {
    this.#decode = decode;
  }

  /** Switches to keyed mode for every frame not yet taken out with next(). */
  setKeys(keys: DirectionKeys, initialCounter = 0n): void {
    this.#keys = checkKeys(keys);
    this.#counter = new Counter(initialCounter);
  }

  /** Bytes received but not yet decoded. */
  get buffered(): number {
    return this.#buffered;
  }

  /** True while bytes of an unfinished frame are held (buffered, or a frame being decrypted). */
  get midFrame(): boolean {
    return this.#buffered > 0 || this.#stream !== undefined;
  }

  /** Appends received bytes. Nothing is decoded until next(). */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.#failed) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next whole message, or undefined when more bytes are needed. Throws ProtocolError. */
  next(): M | undefined {
    if (this.#failed) throw this.#failed;
    try {
      return this.#next();
    } catch (err) {
      this.#failed =
        err instanceof ProtocolError
          ? err
          : new ProtocolError('ERR_MALFORMED', 'undecodable frame', { cause: err });
      this.#chunks = [];
      this.#buffered = 0;
      throw this.#failed;
    }
  }

  #next(): M | undefined {
    if (this.#stream) return this.#continue();
    if (this.#buffered < 4) return undefined;
    const len = this.#peekU32();
    const max = this.#keys ? MAX_FRAME_LEN : MAX_HANDSHAKE_FRAME_LEN;
    if (len > max)
      throw new ProtocolError('ERR_FRAME_TOO_LARGE', `frame length ${len} exceeds the limit of ${max}`);
    const min = this.#keys ? 1 + TAG_LEN : 1;
    if (len < min)
      throw new ProtocolError('ERR_FRAME_TOO_SMALL', `frame length ${len} is below the minimum of ${min}`);
    if (this.#keys && len >= STREAM_MIN_LEN && this.#chunks[0]!.length < 4 + len) {
      // Not in one chunk: decrypt the pieces as they come instead of joining them first.
      this.#begin(this.#keys, len);
      return this.#continue();
    }
    if (this.#buffered < 4 + len) return undefined;
    const frame = this.#take(4 + len);
    const header = frame.subarray(0, 4);
    const body = frame.subarray(4);
    if (!this.#keys) return this.#decode(body);
    return this.#decode(this.#open(this.#keys, header, body));
  }

  #begin(keys: SealingKeys, len: number): void {
    const header = this.#take(4);
    const nonce = this.#counter.nextNonce(keys.nonceBase);
    const decipher = createDecipheriv(ALGO, keys.key, nonce, { authTagLength: TAG_LEN });
    decipher.setAAD(header, { plaintextLength: len - TAG_LEN });
    this.#stream = { decipher, ctLeft: len - TAG_LEN, tag: Buffer.alloc(TAG_LEN), tagGot: 0, out: [] };
  }

  #continue(): M | undefined {
    const st = this.#stream!;
    while (this.#chunks.length > 0 && (st.ctLeft > 0 || st.tagGot < TAG_LEN)) {
      const c = this.#chunks[0]!;
      let n: number;
      if (st.ctLeft > 0) {
        n = Math.min(c.length, st.ctLeft);
        st.out.push(st.decipher.update(c.subarray(0, n)));
        st.ctLeft -= n;
      } else {
        n = Math.min(c.length, TAG_LEN - st.tagGot);
        c.copy(st.tag, st.tagGot, 0, n);
        st.tagGot += n;
      }
      this.#buffered -= n;
      if (n === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(n);
    }
    if (st.ctLeft > 0 || st.tagGot < TAG_LEN) return undefined;
    this.#stream = undefined;
    try {
      st.decipher.setAuthTag(st.tag);
      st.decipher.final();
    } catch (cause) {
      throw new ProtocolError(
        'ERR_DECRYPT',
        'frame failed authentication (tampered, replayed or reordered)',
        {
          cause,
        },
      );
    }
    const first = st.out[0]!;
    // A stored Data frame keeps its payload in the pieces it was decrypted into.
    const data = first[0] === Codec.stored ? decodeDataHeader(first.subarray(1)) : undefined;
    if (data) {
      const start = 1 + data.payloadOffset;
      let total = -start;
      for (const p of st.out) total += p.length;
      if (total > MAX_PAYLOAD)
        throw new ProtocolError('ERR_MALFORMED', `Data payload exceeds ${MAX_PAYLOAD}`);
      const pieces = [first.subarray(start), ...st.out.slice(1)].filter((p) => p.length > 0);
      return dataFromPieces(data.fin, pieces) as M;
    }
    return this.#decode(this.#unpack(Buffer.concat(st.out)));
  }

  #open(keys: SealingKeys, header: Buffer, body: Buffer): Buffer {
    const ctLen = body.length - TAG_LEN;
    const nonce = this.#counter.nextNonce(keys.nonceBase);
    let packed: Buffer;
    try {
      const decipher = createDecipheriv(ALGO, keys.key, nonce, { authTagLength: TAG_LEN });
      decipher.setAAD(header, { plaintextLength: ctLen });
      decipher.setAuthTag(body.subarray(ctLen));
      packed = decipher.update(body.subarray(0, ctLen));
      decipher.final();
    } catch (cause) {
      throw new ProtocolError(
        'ERR_DECRYPT',
        'frame failed authentication (tampered, replayed or reordered)',
        {
          cause,
        },
      );
    }
    return this.#unpack(packed);
  }

  /** The plaintext of a decrypted body: stored as is, or LZ4 or zstd within the cap. */
  #unpack(packed: Buffer): Buffer {
    const codec = packed[0];
    if (codec === Codec.stored) {
      if (packed.length - 1 > MAX_PLAINTEXT)
        throw new ProtocolError('ERR_MALFORMED', 'stored body exceeds MAX_PLAINTEXT');
      return packed.subarray(1);
    }
    if (codec === Codec.lz4) return lz4Decompress(packed.subarray(1), MAX_PLAINTEXT);
    // A receiver decodes codec 2 on any frame (like codec 1); only the sender waits for the grant.
    if (codec === Codec.zstd) return zstdDecompress(packed.subarray(1), MAX_PLAINTEXT);
    throw new ProtocolError('ERR_UNKNOWN_CODEC', `unknown body codec ${codec}`);
  }

  #peekU32(): number {
    const first = this.#chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return this.#copyOut(4).readUInt32BE(0);
  }

  /** Copies the first n buffered bytes without consuming them. */
  #copyOut(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (const c of this.#chunks) {
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (off === n) break;
    }
    return out;
  }

  /** Removes and returns the first n buffered bytes (a view when they lie in one chunk). */
  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.#chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    return out;
  }
}
