/**
 * IP addresses between their text form (node:net) and their wire form (4 or 16 bytes). An
 * IPv4-mapped IPv6 address (a visitor on a dual-stack listener) is IPv4 on the wire.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** An address in wire form. */
export interface WireAddress {
  family: 4 | 6;
  bytes: Buffer;
}

const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** The wire form of an IPv4 or IPv6 address in text; undefined when `text` is neither. */
export function addressToWire(text: string): WireAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const mapped = MAPPED.exec(bare);
  const v4 = mapped ? mapped[1]! : bare;
  if (isIPv4(v4)) return { family: 4, bytes: Buffer.from(v4.split('.').map(Number)) };
  if (!isIPv6(bare)) return undefined;
  const bytes = ipv6Bytes(bare);
  // A mapped address written in hex (::ffff:c000:201) is IPv4 too.
  if (bytes.subarray(0, 12).equals(V4_MAPPED_PREFIX)) return { family: 4, bytes: bytes.subarray(12) };
  return { family: 6, bytes };
}

const V4_MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

function ipv6Bytes(text: string): Buffer {
  const zone = text.indexOf('%');
  let t = zone >= 0 ? text.slice(0, zone) : text;
  const out = Buffer.alloc(16);
  // A trailing dotted quad (::1.2.3.4) fills the last 4 bytes.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  let tailBytes: number[] = [];
  if (quad) {
    tailBytes = quad[1]!.split('.').map(Number);
    t = `${t.slice(0, quad.index)}0:0`;
  }
  const [head, tail] = t.includes('::') ? t.split('::') : [t, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const h = groups(head);
  const tl = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  for (const [i, g] of all.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  if (quad) Buffer.from(tailBytes).copy(out, 12);
  return out;
}

/** The text form of a wire address: dotted quad, or compressed IPv6 (RFC 5952). */
export function wireToAddress(family: 4 | 6, bytes: Buffer): string {
  if (family === 4) return [...bytes].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // The longest run of two or more zero groups becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** "host:port" for logs and views, with brackets around IPv6. */
export function formatHostPort(family: 4 | 6, bytes: Buffer, port: number): string {
  const a = wireToAddress(family, bytes);
  return family === 6 ? `[${a}]:${port}` : `${a}:${port}`;
}

/** The key a per-source limit counts under: the IPv4 address, or the IPv6 /64. */
export function sourceKey(text: string | undefined): string {
  const w = text ? addressToWire(text) : undefined;
  if (!w) return text ?? '?';
  return w.family === 4 ? wireToAddress(4, w.bytes) : `${w.bytes.subarray(0, 8).toString('hex')}/64`;
}
