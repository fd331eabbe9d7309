/**
 * Keyed frames from arbitrary bodies, so a mutation made before encryption (a bad codec byte, a
 * lying LZ4 size, a broken plaintext) still authenticates and reaches the layers behind the AEAD.
 * It restates the frame layer in a few lines; checkSealer() proves at every start that it produces
 * exactly the real FrameEncoder's bytes, so if the wire changes the campaign stops and says so.
 */
import { createCipheriv } from 'node:crypto';
import { lz4Compress, zstdAvailable, zstdCompress } from '../../src/protocol/compression.js';
import { type DirectionKeys, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { TAG_LEN } from '../../src/protocol/limits.js';
import { encodeMessage } from '../../src/protocol/messages.js';
import { seeds } from './seeds.js';

/** The codec byte values, as the frame codec defines them. */
export const STORED = 0;
export const LZ4 = 1;
export const ZSTD = 2;

/** The compressed codecs this Node can make (zstd from Node 22.15). */
export function compressedCodecs(): number[] {
  return zstdAvailable() ? [LZ4, ZSTD] : [LZ4];
}

/** `len | AEAD(body)` under `keys` at `counter`, the length header as associated data. */
export function sealBody(keys: DirectionKeys, counter: bigint, body: Buffer): Buffer {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(body.length + TAG_LEN);
  const nonce = Buffer.alloc(12);
  keys.nonceBase.copy(nonce, 0, 0, 4);
  nonce.writeBigUInt64BE(counter, 4);
  const cipher = createCipheriv('chacha20-poly1305', keys.key, nonce, { authTagLength: TAG_LEN });
  cipher.setAAD(header, { plaintextLength: body.length });
  const ct = cipher.update(body);
  cipher.final();
  return Buffer.concat([header, ct, cipher.getAuthTag()]);
}

/** The body of a plaintext: codec byte, then the plaintext stored, LZ4- or zstd-compressed. */
export function bodyOf(plaintext: Buffer, codec: number): Buffer {
  if (codec === LZ4) return Buffer.concat([Buffer.of(LZ4), lz4Compress(plaintext)]);
  if (codec === ZSTD) return Buffer.concat([Buffer.of(ZSTD), zstdCompress(plaintext)]);
  return Buffer.concat([Buffer.of(codec), plaintext]);
}

/** Throws unless sealBody gives the real encoder's bytes for every sample, stored and compressed. */
export function checkSealer(): void {
  const keys = { key: Buffer.alloc(32, 7), nonceBase: Buffer.from([1, 2, 3, 4]) };
  const modes = [['never', LZ4] as const, ...compressedCodecs().map((c) => ['always', c] as const)];
  for (const [mode, codec] of modes) {
    const enc = new FrameEncoder({ compression: mode, codec: codec === ZSTD ? 'zstd' : 'lz4' });
    enc.setKeys(keys);
    let counter = 0n;
    const samples = [
      ...seeds().all,
      { type: 'Data', fin: false, payload: Buffer.alloc(4096, 0x61) } as const,
    ];
    for (const msg of samples) {
      const real = enc.encodeToBuffer(msg);
      const plain = encodeMessage(msg);
      let body = bodyOf(plain, STORED);
      if (mode === 'always') {
        const packed = bodyOf(plain, codec);
        if (packed.length < body.length) body = packed;
      }
      const mine = sealBody(keys, counter++, body);
      if (!mine.equals(real)) {
        throw new Error(
          `fuzz/lib/seal.ts no longer matches FrameEncoder (${mode}, codec ${codec}, ${msg.type}); the frame layer changed, update the sealer`,
        );
      }
    }
  }
}
