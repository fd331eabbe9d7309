/**
 * Host names, IP addresses, CIDR blocks and "host:port" strings. Pure (no Node APIs), so the server,
 * the client's config schema and the dashboard's web build share one set of rules.
 */
import { ConfigError } from './config-error.js';

/** Splits "host:port" (IPv6 in brackets). */
export function splitHostPort(s: string): { host: string; port: number } {
  // A host holds no bracket of its own, in brackets or not: "[a]b]:1" and "[a[b]:1" are no host:port.
  const m = /^(?:\[([^[\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`"${s}" is not "host:port"`, 'server');
  return { host: (m[1] ?? m[2])!, port };
}

/** "host:port" as a person writes it: IPv6 addresses in brackets ("[::1]:8080"). */
export function formatHostPort(host: string, port: number | string): string {
  const bare = unbracket(host);
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** "[::1]" -> "::1"; anything else unchanged. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The four bytes of a dotted-quad IPv4 address (each part 0-255, no leading zeros), or undefined. */
export function parseIPv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    // A leading zero is octal to inet_aton() and decimal to people: refuse the ambiguity.
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** The sixteen bytes of an IPv6 address (zone id allowed, e.g. "fe80::1%eth0"), or undefined. */
export function parseIPv6(s: string): number[] | undefined {
  let addr = s;
  const pct = addr.indexOf('%');
  if (pct >= 0) {
    // Only what Node accepts in a zone id (no '_'), so that every address we accept can be dialed.
    if (!/^[A-Za-z0-9.-]{1,32}$/.test(addr.slice(pct + 1))) return undefined;
    addr = addr.slice(0, pct);
  }
  const lastColon = addr.lastIndexOf(':');
  if (lastColon >= 0 && addr.includes('.', lastColon)) {
    // An embedded IPv4 tail ("::ffff:192.0.2.1") stands for the last two groups.
    const v4 = parseIPv4(addr.slice(lastColon + 1));
    if (!v4) return undefined;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    addr = `${addr.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const have = head.length + rest.length;
  if (halves.length === 2 ? have > 7 : have !== 8) return undefined;
  const words = [...head, ...new Array<number>(8 - have).fill(0), ...rest];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * What is wrong with `host` as a place to dial ("a host name or address"), or undefined when it is
 * fine: a DNS name (labels of letters, digits, '-' and '_'), a dotted-quad IPv4 address, or an IPv6
 * address, bare or in brackets. `label` is how the user knows the field ("local host").
 */
export function hostProblem(host: string, label = 'host'): string | undefined {
  if (host === '') return `${label} is required`;
  if (host.length > 255) return `${label} is too long (at most 253 characters)`;
  if (host.startsWith('[') || host.endsWith(']')) {
    return parseIPv6(unbracket(host)) && host.startsWith('[') && host.endsWith(']')
      ? undefined
      : `${label} "${host}" is not an IPv6 address in brackets`;
  }
  if (host.includes(':')) {
    return parseIPv6(host) ? undefined : `${label} "${host}" is not a valid IPv6 address`;
  }
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  const labels = name.split('.');
  // A name whose last label is all digits can only be meant as an IPv4 address (no top-level
  // domain is numeric), so hold it to the dotted-quad rules.
  if (/^\d+$/.test(labels.at(-1) ?? '')) {
    return parseIPv4(name)
      ? undefined
      : `${label} "${host}" is not an IPv4 address: use four numbers from 0 to 255, e.g. 192.168.1.20`;
  }
  if (name.length > 253 || !labels.every((l) => LABEL.test(l))) {
    return `${label} "${host}" is not a host name or IP address (letters, digits, dots, dashes; e.g. db.lan or 192.168.1.20)`;
  }
  return undefined;
}

/** A parsed CIDR block: address family, prefix length and the network's bytes. */
export interface Cidr {
  family: 4 | 6;
  prefix: number;
  bytes: number[];
}

/**
 * Parses "10.0.0.0/8", "2001:db8::/32" or a single address ("192.0.2.7" = /32). Returns the block,
 * or a sentence saying what is wrong (host bits set, prefix out of range, not an address).
 */
export function parseCidr(s: string): Cidr | string {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const v4 = parseIPv4(addr);
  const v6 = v4 ? undefined : parseIPv6(unbracket(addr));
  if (!v4 && !v6) return `"${s}" is not an address or CIDR block (e.g. 203.0.113.0/24 or 2001:db8::/32)`;
  if (v6 && addr.includes('%')) return `"${s}": a zone id (%…) has no place in a CIDR block`;
  const bytes = (v4 ?? v6)!;
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `"${s}": the prefix length must be from 0 to ${max}`;
    prefix = Number(p);
  }
  for (let bit = prefix; bit < max; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) {
      const net = bytes.map((b, i) => {
        const keep = Math.max(0, Math.min(8, prefix - i * 8));
        return b & ((0xff << (8 - keep)) & 0xff);
      });
      return `"${s}" has bits set after the /${prefix} prefix; did you mean ${formatAddress(net)}/${prefix}?`;
    }
  }
  return { family: v4 ? 4 : 6, prefix, bytes };
}

/** Bytes of an address as text (IPv4 dotted, IPv6 in its shortest form). */
export function formatAddress(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  // The longest run (two or more) of zero words becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j > i ? j : i + 1;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
