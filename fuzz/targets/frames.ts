/**
 * The frame decoder, cleartext and keyed, fed byte streams split at random positions.
 *
 * Keyed streams are built with valid keys: real FrameEncoder output (every compression mode, both
 * codecs), then changed after encryption (integrity: nothing after the first changed byte may
 * decode), or built from bodies changed before encryption (a bad codec byte, a lying LZ4 or zstd
 * size prefix, a corrupt LZ4 block or zstd frame, a zstd bomb, a broken plaintext), sealed so they
 * authenticate and reach the decompressors and the message decoders. Properties for every stream: only coded errors; the same messages and the same error
 * whether the bytes come in one piece or in many (that also compares the piecewise decryption of
 * large frames against the one-shot path); decoded messages re-encode to their plaintexts.
 */

import { type DirectionKeys, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import {
  MAX_FRAME_LEN,
  MAX_HANDSHAKE_FRAME_LEN,
  MAX_PAYLOAD,
  MAX_PLAINTEXT,
  TAG_LEN,
} from '../../src/protocol/limits.js';
import { encodeMessage, type Message } from '../../src/protocol/messages.js';
import { cutPoints, havoc, split } from '../lib/mutate.js';
import { errorLabel, expectCoded, OracleError } from '../lib/outcome.js';
import type { Rng } from '../lib/rng.js';
import { bodyOf, checkSealer, compressedCodecs, LZ4, STORED, sealBody, ZSTD } from '../lib/seal.js';
import { seedMessage, seeds } from '../lib/seeds.js';
import type { Target } from '../lib/target.js';
import { zstdFrameSync } from '../lib/zstd-frames.js';
import { DECODERS, type DecoderName, mutatedPlaintext } from './messages.js';

/** What one decoder made of a stream. */
interface Outcome {
  messages: Buffer[];
  error: string | undefined;
}

/** Feeds `pieces` one by one, draining after each; keys switch on after `keyAfter` messages. */
function run(
  decoder: DecoderName,
  pieces: readonly Buffer[],
  keys: DirectionKeys | undefined,
  keyAfter: number,
  counter: bigint,
): Outcome {
  const d = new FrameDecoder<Message>(DECODERS[decoder]);
  if (keys && keyAfter === 0) d.setKeys(keys, counter);
  const messages: Buffer[] = [];
  try {
    for (const p of pieces) {
      d.push(p);
      for (;;) {
        const m = d.next();
        if (m === undefined) break;
        messages.push(encodeMessageChecked(m));
        if (keys && messages.length === keyAfter) d.setKeys(keys, counter);
      }
    }
  } catch (err) {
    expectCoded(err);
    return { messages, error: errorLabel(err) };
  }
  return { messages, error: undefined };
}

function encodeMessageChecked(m: Message): Buffer {
  try {
    return encodeMessage(m);
  } catch (err) {
    throw new OracleError(`decoded ${m.type} cannot be encoded again: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  return (
    a.error === b.error &&
    a.messages.length === b.messages.length &&
    a.messages.every((m, i) => m.equals(b.messages[i]!))
  );
}

/** Inputs of the frame targets. */
interface FrameInput {
  decoder: DecoderName;
  /** Undefined: cleartext only. */
  keys: { key: Buffer; nonceBase: Buffer } | undefined;
  /** The first keyed frame's counter. */
  counter: bigint;
  /** Cleartext messages before the decoder switches to keyed mode. */
  keyAfter: number;
  stream: Buffer;
  cuts: number[];
  /** 'valid': these exact plaintexts must come out, and nothing else. 'after': the first `intact`
   * must come out and nothing more. Otherwise: only the generic properties. */
  check: 'valid' | 'after' | 'none';
  plaintexts: Buffer[];
  intact: number;
}

function lenHeader(n: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(n >>> 0);
  return h;
}

/** A cleartext frame, its length header sometimes lying. */
function clearFrame(plain: Buffer, rng: Rng): Buffer {
  let len = plain.length;
  if (rng.chance(0.15)) {
    len = rng.pick([
      0,
      1,
      5,
      6,
      len - 1,
      len + 1,
      MAX_HANDSHAKE_FRAME_LEN,
      MAX_HANDSHAKE_FRAME_LEN + 1,
      0xffffffff,
      rng.u32(),
    ]);
  }
  return Buffer.concat([lenHeader(len), plain]);
}

function cleartextCase(rng: Rng): FrameInput {
  const frames: Buffer[] = [];
  const n = 1 + rng.smallLen(4);
  for (let i = 0; i < n; i++)
    frames.push(clearFrame(rng.chance(0.7) ? mutatedPlaintext(rng) : encodeMessage(seedMessage(rng)), rng));
  let stream: Buffer = Buffer.concat(frames);
  if (rng.chance(0.1)) stream = havoc(stream, rng);
  return {
    decoder: rng.pick(['client', 'server', 'client', 'server', 'any'] as const),
    keys: undefined,
    counter: 0n,
    keyAfter: 0,
    stream,
    cuts: cutPoints(stream.length, rng),
    check: 'none',
    plaintexts: [],
    intact: 0,
  };
}

function decodesAs(decoder: DecoderName, m: Message): boolean {
  try {
    DECODERS[decoder](encodeMessage(m));
    return true;
  } catch {
    return false;
  }
}

/** A varied sample that this decoder accepts as it is (what an honest peer sends). */
function cleanFor(decoder: DecoderName, rng: Rng): Message {
  for (let attempt = 0; attempt < 16; attempt++) {
    // A message of the other side, or one that a variation made invalid, is drawn again.
    const m = seedMessage(rng);
    if (decodesAs(decoder, m)) return m;
  }
  return { type: 'Data', fin: false, payload: rng.bytes(rng.smallLen(100)) };
}

/** A Data message big enough for the piecewise decryption path (16 KiB and up). */
function bigData(rng: Rng): Message {
  const len = rng.chance(0.3) ? MAX_PAYLOAD - rng.int(2) : 16 * 1024 + rng.int(MAX_PAYLOAD - 16 * 1024);
  const payload = rng.chance(0.5) ? rng.bytes(len) : Buffer.alloc(len, rng.int(256));
  return { type: 'Data', fin: rng.chance(0.2), payload };
}

const COUNTER_STARTS = [0n, 1n, 2n ** 32n - 1n, 2n ** 64n - 4n];

/** A keyed case: a stream of frames from the real encoder, changed before or after encryption. */
function keyedCase(rng: Rng): FrameInput {
  const keys = { key: rng.bytes(32), nonceBase: rng.bytes(4) };
  const counter = rng.chance(0.9) ? 0n : rng.pick(COUNTER_STARTS);
  const decoder = rng.pick(['client', 'server'] as const);
  const mode = rng.weighted([
    [3, 'valid'],
    [4, 'after'],
    [8, 'before'],
  ] as const);
  // Sometimes a cleartext hello first, then the switch to keyed mode (as the handshakes do).
  const prefix: Buffer[] = [];
  const plaintexts: Buffer[] = [];
  if (rng.chance(0.2)) {
    const hello = seeds().all.filter((m) => /Hello/.test(m.type) && decodesAs(decoder, m));
    const p = encodeMessage(rng.pick(hello));
    prefix.push(Buffer.concat([lenHeader(p.length), p]));
    plaintexts.push(p);
  }
  const keyAfter = prefix.length;
  const input = (stream: Buffer, check: FrameInput['check'], plaintexts: Buffer[], intact: number) => ({
    decoder,
    keys,
    counter,
    keyAfter,
    stream,
    cuts: cutPoints(stream.length, rng),
    check,
    plaintexts,
    intact,
  });
  const n = 1 + rng.smallLen(5);
  const msgs: Message[] = [];
  for (let i = 0; i < n; i++)
    msgs.push(
      rng.chance(0.02) ? bigData(rng) : mode === 'before' ? seedMessage(rng) : cleanFor(decoder, rng),
    );

  if (mode !== 'before') {
    const enc = new FrameEncoder({
      compression: rng.pick(['auto', 'always', 'never'] as const),
      codec: compressedCodecs().includes(ZSTD) && rng.chance(0.5) ? 'zstd' : 'lz4',
    });
    enc.setKeys(keys, counter);
    const frames: Buffer[] = [];
    for (const m of msgs) {
      try {
        frames.push(enc.encodeToBuffer(m));
      } catch (err) {
        // Only an exhausted counter may stop the encoder here.
        expectCoded(err);
        break;
      }
      plaintexts.push(encodeMessage(m));
    }
    const clean = Buffer.concat([...prefix, ...frames]);
    if (mode === 'valid') return input(clean, 'valid', plaintexts, 0);
    // After encryption: reorder, replay or drop a frame, or change bytes.
    const all = [...prefix, ...frames];
    const r = rng.int(5);
    let changed: Buffer[];
    if (r === 0 && all.length > 1) {
      const i = rng.int(all.length);
      const j = rng.int(all.length);
      changed = [...all];
      [changed[i], changed[j]] = [changed[j]!, changed[i]!];
    } else if (r === 1) {
      const i = rng.int(all.length);
      changed = [...all.slice(0, i + 1), all[i]!, ...all.slice(i + 1)];
    } else if (r === 2 && all.length > 1) {
      const i = rng.int(all.length);
      changed = all.filter((_, k) => k !== i);
    } else {
      const i = rng.int(all.length);
      changed = [...all];
      changed[i] = havoc(all[i]!, rng, 2);
    }
    const stream = Buffer.concat(changed);
    // Frames wholly before the first changed byte must still decode; nothing after it may.
    let firstDiff = 0;
    while (firstDiff < stream.length && firstDiff < clean.length && stream[firstDiff] === clean[firstDiff])
      firstDiff++;
    let intact = 0;
    let end = 0;
    for (const f of all) {
      end += f.length;
      if (end <= firstDiff) intact++;
      else break;
    }
    if (stream.equals(clean)) intact = all.length;
    // A cleartext frame has no integrity: changed, it may well decode (differently).
    return input(stream, intact < prefix.length ? 'none' : 'after', plaintexts, intact);
  }

  // Before encryption: change the plaintext, the codec byte, the LZ4 size or block, then seal.
  const frames: Buffer[] = [];
  let c = counter;
  for (const m of msgs) {
    if (c >= 2n ** 64n - 1n) break;
    const r = rng.int(10);
    const plain = r < 5 ? mutatedPlaintext(rng) : encodeMessage(m);
    let body = bodyOf(plain, rng.chance(0.5) ? rng.pick(compressedCodecs()) : STORED);
    if (r >= 5) body = mutateBody(body, rng);
    if (body.length + TAG_LEN > MAX_FRAME_LEN && rng.chance(0.9))
      body = body.subarray(0, MAX_FRAME_LEN - TAG_LEN);
    frames.push(sealBody(keys, c++, body));
  }
  return input(Buffer.concat([...prefix, ...frames]), 'none', [], 0);
}

let caps: Buffer[] | undefined;
/**
 * Small bodies that expand to the cap exactly, and one byte less (the most a frame may inflate
 * to), in each codec; and zstd bombs: frames of 4 MiB declaring the cap, with a window the
 * receiver accepts (only the output bound stops them) and with one it refuses.
 */
function capBodies(): Buffer[] {
  caps ??= [MAX_PLAINTEXT, MAX_PLAINTEXT - 1].flatMap((n) => {
    const plain = Buffer.alloc(n, 0);
    plain[0] = 0x40; // Data, flags 0, stream 0
    return compressedCodecs().map((codec) => bodyOf(plain, codec));
  });
  if (compressedCodecs().includes(ZSTD) && caps.length === 4) {
    const huge = Buffer.alloc(4 * 1024 * 1024);
    for (const windowLog of [17, 23]) {
      caps.push(Buffer.concat([Buffer.of(ZSTD), le32(MAX_PLAINTEXT), zstdFrameSync(huge, windowLog)]));
    }
  }
  return caps;
}

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Changes a body where the decompressor and the codec switch look: codec byte, size prefix, block. */
function mutateBody(body: Buffer, rng: Rng): Buffer {
  const out = Buffer.from(body);
  const r = rng.int(6);
  if (r === 0) {
    out[0] = rng.pick([0, 1, 2, 0x7f, 0x80, 0xff]);
    return out;
  }
  if (r === 1 && (out[0] === LZ4 || out[0] === ZSTD) && out.length >= 5) {
    // The declared size: honest ±1, zero, at and past the cap, huge.
    const now = out.readUInt32LE(1);
    const v = rng.pick([
      0,
      1,
      now - 1,
      now + 1,
      now * 2,
      MAX_PLAINTEXT,
      MAX_PLAINTEXT + 1,
      0xffffffff,
      rng.u32(),
    ]);
    out.writeUInt32LE(Math.max(0, Math.min(0xffffffff, v)) >>> 0, 1);
    return out;
  }
  if (r === 2 && out[0] === LZ4) {
    // A block that claims a long match far back, or a literal run past the end.
    const at = 5 + rng.int(Math.max(1, out.length - 5));
    const evil = rng.pick([
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x0f, 0x00, 0x00]),
      Buffer.from([0xf0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x1f, 0x41, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x00, 0x00]),
    ]);
    return Buffer.concat([out.subarray(0, at), evil, out.subarray(at)]);
  }
  if (r === 2 && out[0] === ZSTD && out.length >= 10) {
    // The zstd frame header (descriptor, window, content size) or a block header set to extremes.
    const at = 5 + 4 + rng.int(Math.min(out.length - 9, 12));
    out[at] = rng.pick([0x00, 0xff, 0x20, 0xe0, 0xc0, 0x7f, out[at]! ^ 1]);
    return out;
  }
  if (r === 3) return rng.pick(capBodies());
  return havoc(out, rng, 3);
}

function execute(input: FrameInput): void {
  const keys = input.keys;
  const whole = run(input.decoder, [input.stream], keys, input.keyAfter, input.counter);
  const pieces = split(input.stream, input.cuts);
  const cut = run(input.decoder, pieces, keys, input.keyAfter, input.counter);
  if (!sameOutcome(whole, cut)) {
    throw new OracleError(
      `the stream decodes differently in ${pieces.length} pieces: whole gave ${whole.messages.length} messages and ${whole.error ?? 'no error'}, pieces gave ${cut.messages.length} and ${cut.error ?? 'no error'}`,
    );
  }
  if (input.check === 'valid') {
    const ok =
      whole.error === undefined &&
      whole.messages.length === input.plaintexts.length &&
      whole.messages.every((m, i) => m.equals(input.plaintexts[i]!));
    if (!ok) {
      throw new OracleError(
        `valid frames did not decode to what was sent: ${whole.messages.length}/${input.plaintexts.length} messages, ${whole.error ?? 'no error'}`,
      );
    }
  }
  if (input.check === 'after') {
    const got = whole.messages.length;
    if (got !== input.intact || !whole.messages.every((m, i) => m.equals(input.plaintexts[i]!))) {
      throw new OracleError(
        `a stream changed after encryption gave ${got} messages; exactly the ${input.intact} intact frames before the change may decode`,
      );
    }
  }
}

/** Cleartext mode (handshake frames). */
export const framesCleartext: Target<FrameInput> = {
  name: 'frames-cleartext',
  about: 'FrameDecoder in cleartext mode: mutated frames and lying lengths, split anywhere; split invariance',
  weight: 100_000,
  hangMs: 2000,
  setup: () => void seeds(),
  generate: cleartextCase,
  execute,
};

/** Keyed mode, with valid keys. */
export const framesKeyed: Target<FrameInput> = {
  name: 'frames-keyed',
  about:
    'FrameDecoder in keyed mode with valid keys: frames changed before encryption (codec, LZ4, zstd, bombs, plaintext) and after (bytes, replay, reorder, drop); integrity, split invariance, round trip',
  weight: 150_000,
  hangMs: 5000,
  setup: () => {
    seeds();
    checkSealer();
  },
  generate: keyedCase,
  execute,
};
