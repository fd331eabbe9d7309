/**
 * D-Bus wire marshalling (https://dbus.freedesktop.org/doc/dbus-specification.html#message-protocol),
 * the subset a tray icon needs: every basic type except unix fds, arrays, structs, dict entries and
 * variants. Values map to JS as:
 *   y n q i u d -> number, x t -> bigint, b -> boolean, s o g -> string, ay -> Buffer,
 *   a{..} -> Map, other arrays -> Array, (..) -> Array, v -> Variant.
 * Writers also accept a plain object for a{s..} and any array of numbers for ay.
 *
 * This file holds the type system (signatures, alignment, Variant); wire-writer.ts and wire-reader.ts
 * write and read values; marshal.ts is their one import.
 */

/** A value with its own signature: D-Bus's `v`. */
export class Variant<T = unknown> {
  constructor(
    readonly signature: string,
    readonly value: T,
  ) {}
}

/** A message or signature that breaks the wire rules. */
export class DBusWireError extends Error {
  readonly code = 'DBUS_WIRE';
}

/** Largest message we write or accept; the spec allows 128 MiB, a tray needs a few KiB. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Deepest nesting of containers we accept (the spec's limit is 64 in total). */
export const MAX_DEPTH = 32;

/** One complete type from a signature. */
export type TypeNode =
  | { kind: 'basic'; code: string }
  | { kind: 'array'; elem: TypeNode }
  | { kind: 'dict'; key: TypeNode; value: TypeNode }
  | { kind: 'struct'; fields: TypeNode[] }
  | { kind: 'variant' };

export const BASIC = 'ybnqiuxtdsog';
export const ALIGN: Record<string, number> = {
  y: 1,
  b: 4,
  n: 2,
  q: 2,
  i: 4,
  u: 4,
  x: 8,
  t: 8,
  d: 8,
  s: 4,
  o: 4,
  g: 1,
  v: 1,
};

/** Splits a signature into its complete types. */
export function parseSignature(sig: string): TypeNode[] {
  if (sig.length > 255) throw new DBusWireError('signature longer than 255 bytes');
  const out: TypeNode[] = [];
  let pos = 0;
  const one = (depth: number): TypeNode => {
    if (depth > MAX_DEPTH) throw new DBusWireError('signature nests too deeply');
    const c = sig[pos++];
    if (c === undefined) throw new DBusWireError(`incomplete signature "${sig}"`);
    if (BASIC.includes(c)) return { kind: 'basic', code: c };
    if (c === 'v') return { kind: 'variant' };
    if (c === 'a') {
      if (sig[pos] === '{') {
        pos++;
        const key = one(depth + 1);
        if (key.kind !== 'basic') throw new DBusWireError('dict key must be a basic type');
        const value = one(depth + 1);
        if (sig[pos++] !== '}') throw new DBusWireError(`bad dict entry in "${sig}"`);
        return { kind: 'dict', key, value };
      }
      return { kind: 'array', elem: one(depth + 1) };
    }
    if (c === '(') {
      const fields: TypeNode[] = [];
      while (sig[pos] !== ')') {
        if (pos >= sig.length) throw new DBusWireError(`unclosed struct in "${sig}"`);
        fields.push(one(depth + 1));
      }
      pos++;
      if (fields.length === 0) throw new DBusWireError('empty struct');
      return { kind: 'struct', fields };
    }
    throw new DBusWireError(`unsupported type code "${c}" in "${sig}"`);
  };
  while (pos < sig.length) out.push(one(0));
  return out;
}

/** The alignment of a type's values on the wire, in bytes. */
export function alignOf(t: TypeNode): number {
  switch (t.kind) {
    case 'basic':
      return ALIGN[t.code]!;
    case 'array':
    case 'dict':
      return 4;
    case 'struct':
      return 8;
    case 'variant':
      return 1;
  }
}

/** True for a valid D-Bus object path such as /org/example/Item. */
export function isObjectPath(p: string): boolean {
  return p === '/' || /^(\/[A-Za-z0-9_]+)+$/.test(p);
}
