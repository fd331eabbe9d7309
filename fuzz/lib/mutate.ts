/**
 * Structure-aware mutation. A message is split into fields using the real encoder's own parts
 * (encodeMessageParts returns the header and each payload field as its own buffer), so the mutator
 * knows which bytes are the type, the flags, the stream id, integers, length prefixes and the bytes
 * they measure, without a copy of the wire layout. Then it changes what a parser trusts: length
 * fields against their strings, counts, type bytes, flags, enum values, string contents (bad UTF-8,
 * control characters), field order, plus plain byte havoc.
 */
import * as limits from '../../src/protocol/limits.js';
import * as messages from '../../src/protocol/messages.js';
import { encodeMessageParts, type Message } from '../../src/protocol/messages.js';
import type { Rng } from './rng.js';

/** What a field of a plaintext is, as far as the mutator can tell. */
export type FieldRole = 'type' | 'flags' | 'stream' | 'int' | 'len' | 'bytes';

/** One field of a plaintext. `lenOf` is the index of the field a length prefix measures. */
export interface Field {
  role: FieldRole;
  bytes: Buffer;
  lenOf?: number;
}

/** Number-valued tables exported by the message layer (MsgType, reasons, codes…): the closed sets. */
export const ENUM_TABLES: ReadonlyArray<readonly [string, Readonly<Record<string, number>>]> = Object.entries(
  messages,
)
  .filter(
    ([, v]) =>
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      Object.keys(v).length > 0 &&
      Object.values(v).every((x) => typeof x === 'number'),
  )
  .map(([k, v]) => [k, v as Record<string, number>] as const);

const enumValues = new Set<number>();
for (const [, t] of ENUM_TABLES) {
  const values = Object.values(t);
  for (const v of values) enumValues.add(v);
  enumValues.add(Math.max(...values) + 1);
}
/** Every numeric limit of the protocol, and its neighbours. */
const limitValues = new Set<number>();
for (const v of Object.values(limits)) {
  if (typeof v !== 'number') continue;
  for (const d of [-1, 0, 1]) if (v + d >= 0) limitValues.add(v + d);
}

const BASE_INTERESTING = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0x7f, 0x80, 0xfe, 0xff, 0x100, 0x3ff, 0x400,
  0x401, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];

/** Integers worth trying in a field of `width` bytes. */
export function interesting(width: number): number[] {
  const max = width >= 4 ? 0xffffffff : 2 ** (8 * width) - 1;
  const all = new Set<number>([...BASE_INTERESTING, ...enumValues, ...limitValues]);
  return [...all].filter((v) => v <= max);
}
const INTERESTING_BY_WIDTH = new Map<number, number[]>([1, 2, 4].map((w) => [w, interesting(w)]));

/** Byte sequences that break UTF-8 or a terminal, for string fields. */
export const NASTY_BYTES: readonly Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]), // overlong NUL
  Buffer.from([0xed, 0xa0, 0x80]), // a lone surrogate
  Buffer.from([0xe2, 0x82]), // truncated sequence
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
  Buffer.from([0x00]),
  Buffer.from([0x1b, 0x5b, 0x32, 0x4a]), // ESC [2J
  Buffer.from([0x07]),
  Buffer.from([0xc2, 0x9b]), // C1 CSI
  Buffer.from([0x7f]),
  Buffer.from('\r\n'),
  Buffer.from('\u202e'), // right-to-left override
  Buffer.from('é'),
  Buffer.from('😀'),
];

function readInt(b: Buffer): number {
  if (b.length === 0) return 0;
  const w = Math.min(b.length, 6);
  return b.readUIntBE(b.length - w, w);
}

function writeInt(width: number, v: number): Buffer {
  const w = Math.min(width, 6);
  const b = Buffer.alloc(width);
  if (w === 0) return b;
  const max = 2 ** (8 * w);
  const x = ((Math.floor(v) % max) + max) % max;
  b.writeUIntBE(x, width - w, w);
  return b;
}

/** Splits a message into fields, from the encoder's own parts. */
export function fieldsOf(msg: Message): Field[] {
  const parts = encodeMessageParts(msg);
  const header = parts[0]!;
  const fields: Field[] = [];
  if (header.length === limits.PLAINTEXT_HEADER_LEN) {
    fields.push(
      { role: 'type', bytes: Buffer.from(header.subarray(0, 1)) },
      { role: 'flags', bytes: Buffer.from(header.subarray(1, 2)) },
      { role: 'stream', bytes: Buffer.from(header.subarray(2, 6)) },
    );
  } else {
    fields.push({ role: 'bytes', bytes: Buffer.from(header) });
  }
  for (const p of parts.slice(1)) {
    fields.push({
      role: p.length === 1 || p.length === 2 || p.length === 4 ? 'int' : 'bytes',
      bytes: Buffer.from(p),
    });
  }
  // An integer immediately followed by a field of exactly that many bytes is its length prefix.
  for (let i = 3; i + 1 < fields.length; i++) {
    const f = fields[i]!;
    const next = fields[i + 1]!;
    if (f.role === 'int' && f.bytes.length <= 2 && readInt(f.bytes) === next.bytes.length) {
      f.role = 'len';
      f.lenOf = i + 1;
      if (next.role === 'int') next.role = 'bytes';
    }
  }
  return fields;
}

/** Joins fields back into a plaintext. */
export function joinFields(fields: readonly Field[]): Buffer {
  return Buffer.concat(fields.map((f) => f.bytes));
}

function setLen(fields: Field[], lenIndex: number): void {
  const f = fields[lenIndex]!;
  if (f.lenOf === undefined) return;
  const target = fields[f.lenOf];
  if (target) f.bytes = writeInt(f.bytes.length, target.bytes.length);
}

/** Changes one byte string: flips, nasty sequences, truncation, growth. */
export function mutateBytes(b: Buffer, rng: Rng): Buffer {
  const op = rng.int(9);
  if (b.length === 0 && op < 4) return rng.bytes(rng.smallLen(8));
  switch (op) {
    case 0: {
      const out = Buffer.from(b);
      const i = rng.int(out.length);
      out[i]! ^= 1 << rng.int(8);
      return out;
    }
    case 1: {
      const out = Buffer.from(b);
      out[rng.int(out.length)] = rng.pick([0, 0xff, 0x7f, 0x80, 0x1b, 0x20, 0x41, rng.int(256)]);
      return out;
    }
    case 2:
      return b.subarray(0, rng.int(b.length));
    case 3: {
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), rng.pick(NASTY_BYTES), b.subarray(at)]);
    }
    case 4:
      return Buffer.concat([b, rng.bytes(rng.smallLen(64))]);
    case 5:
      return rng.bytes(b.length);
    case 6: {
      // A long run: strings at and past their limits.
      const n = rng.pick([
        limits.MAX_TUNNEL_NAME_LEN,
        limits.MAX_TUNNEL_NAME_LEN + 1,
        limits.MAX_STRING_LEN,
        limits.MAX_STRING_LEN + 1,
        255,
        256,
        rng.int(2048),
      ]);
      return Buffer.alloc(n, rng.pick([0x61, 0x00, 0xff, 0x1b]));
    }
    case 7: {
      // Repeat a nasty sequence so it lands on every alignment.
      const s = rng.pick(NASTY_BYTES);
      return Buffer.concat(Array.from({ length: 1 + rng.int(16) }, () => s));
    }
    default:
      return Buffer.alloc(0);
  }
}

/** One structure-aware change to a field list (in place). */
function mutateOnce(fields: Field[], rng: Rng, donors: readonly Field[][]): void {
  const i = rng.int(fields.length);
  const f = fields[i]!;
  const op = rng.int(12);
  if (op === 0 && fields.length > 1) {
    fields.splice(i, 1);
    return;
  }
  if (op === 1) {
    fields.splice(i, 0, { ...f, bytes: Buffer.from(f.bytes) });
    return;
  }
  if (op === 2 && fields.length > 2) {
    const j = rng.int(fields.length);
    const tmp = fields[i]!;
    fields[i] = fields[j]!;
    fields[j] = tmp;
    return;
  }
  if (op === 3 && donors.length > 0) {
    // Splice a field of another message in (a payload of one type under the header of another).
    const donor = rng.pick(donors);
    const d = rng.pick(donor);
    fields.splice(rng.int(fields.length + 1), 0, { role: d.role, bytes: Buffer.from(d.bytes) });
    return;
  }
  if (op === 4) {
    // Cut the payload at a field boundary.
    fields.length = Math.max(1, rng.int(fields.length));
    return;
  }
  switch (f.role) {
    case 'type':
      f.bytes = Buffer.of(
        rng.chance(0.8) ? rng.pick(Object.values(messages.MsgType) as number[]) : rng.int(256),
      );
      return;
    case 'flags':
      f.bytes = Buffer.of(rng.chance(0.7) ? 1 << rng.int(8) : rng.int(256));
      return;
    case 'stream':
    case 'int': {
      const width = f.bytes.length;
      const now = readInt(f.bytes);
      const r = rng.int(4);
      const v =
        r === 0
          ? rng.pick(INTERESTING_BY_WIDTH.get(width) ?? [0])
          : r === 1
            ? now + rng.range(-16, 16)
            : r === 2
              ? now ^ (1 << rng.int(8 * width))
              : rng.u32();
      f.bytes = writeInt(width, v);
      return;
    }
    case 'len': {
      const target = f.lenOf !== undefined ? fields[f.lenOf] : undefined;
      const actual = target?.bytes.length ?? 0;
      const r = rng.int(4);
      if (r === 0 && target) {
        // Change the string and keep the prefix honest: lengths at and past the limits, bad UTF-8.
        target.bytes = mutateBytes(target.bytes, rng);
        setLen(fields, i);
      } else if (r === 1 && target) {
        // Change the string and leave the prefix lying.
        target.bytes = mutateBytes(target.bytes, rng);
      } else {
        const width = f.bytes.length;
        const v = rng.chance(0.6)
          ? actual + rng.pick([-2, -1, 1, 2, 1 << rng.int(12)])
          : rng.pick(INTERESTING_BY_WIDTH.get(width) ?? [0]);
        f.bytes = writeInt(width, v);
      }
      return;
    }
    default:
      f.bytes = mutateBytes(f.bytes, rng);
  }
}

/** Applies 1 to `max` structure-aware changes to a copy of `fields`. */
export function mutateFields(
  fields: readonly Field[],
  rng: Rng,
  donors: readonly Field[][] = [],
  max = 3,
): Field[] {
  const out = fields.map((f) => ({ ...f }));
  const n = 1 + rng.int(max);
  for (let k = 0; k < n; k++) mutateOnce(out, rng, donors);
  return out;
}

/** Plain byte havoc over a whole buffer: flips, sets, inserts, deletes, truncation. */
export function havoc(b: Buffer, rng: Rng, maxOps = 4): Buffer {
  let out: Buffer = Buffer.from(b);
  const n = 1 + rng.int(maxOps);
  for (let k = 0; k < n; k++) {
    const op = rng.int(7);
    if (out.length === 0) {
      out = rng.bytes(1 + rng.int(8));
      continue;
    }
    const i = rng.int(out.length);
    if (op === 0) out[i]! ^= 1 << rng.int(8);
    else if (op === 1) out[i] = rng.int(256);
    else if (op === 2) out = Buffer.concat([out.subarray(0, i), rng.bytes(1 + rng.int(8)), out.subarray(i)]);
    else if (op === 3) out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1 + rng.int(8))]);
    else if (op === 4) out = out.subarray(0, i);
    else if (op === 5 && i + 1 < out.length) {
      const w = rng.pick([1, 2, 4]);
      if (i + w <= out.length) writeInt(w, rng.pick(INTERESTING_BY_WIDTH.get(w)!)).copy(out, i);
    } else {
      // Duplicate a stretch (repeated fields, repeated frames).
      const len = 1 + rng.int(Math.min(32, out.length - i));
      out = Buffer.concat([out.subarray(0, i + len), out.subarray(i, i + len), out.subarray(i + len)]);
    }
  }
  return out;
}

/** Random cut points for a buffer of `len` bytes: sometimes none, sometimes every byte. */
export function cutPoints(len: number, rng: Rng): number[] {
  const r = rng.int(6);
  if (r === 0 || len < 2) return [];
  // One byte at a time (short streams only: a 256 KiB frame byte by byte costs seconds).
  if (r === 1 && len <= 4096) return Array.from({ length: len - 1 }, (_, i) => i + 1);
  const n = r === 2 ? 1 : 1 + rng.int(Math.min(r === 1 ? 256 : 16, len - 1));
  const set = new Set<number>();
  for (let k = 0; k < n; k++) set.add(1 + rng.int(len - 1));
  return [...set].sort((a, b) => a - b);
}

/** Cuts a buffer at the given points. */
export function split(b: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    if (c > prev && c < b.length) {
      out.push(b.subarray(prev, c));
      prev = c;
    }
  }
  out.push(b.subarray(prev));
  return out;
}
