/**
 * Which visitors a tunnel accepts: the key's permitfrom (allow-list) and the tunnel's own permitFrom
 * (OpenTunnel), both CIDR lists; a visitor must be in both (the client can only narrow what the
 * admin allows). Checked at accept, before anything reaches the client.
 */
import { addressToWire } from '../transport/addresses.js';

/** One CIDR block: family, prefix length and the network address (4 or 16 bytes). */
export interface Block {
  family: 4 | 6;
  prefix: number;
  address: Buffer;
}

/** True when `bytes` (of `family`) is inside `block`. */
export function inBlock(block: Block, family: 4 | 6, bytes: Buffer): boolean {
  if (block.family !== family || block.address.length !== bytes.length) return false;
  const full = block.prefix >> 3;
  if (full > 0 && !bytes.subarray(0, full).equals(block.address.subarray(0, full))) return false;
  const rest = block.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[full]! & mask) === (block.address[full]! & mask);
}

/**
 * True when the visitor at `address` (node:net text; IPv4-mapped IPv6 counts as IPv4) is allowed by
 * every list given: undefined means "anyone", an empty list "no one".
 */
export function visitorPermitted(
  address: string | undefined,
  ...lists: Array<readonly Block[] | undefined>
): boolean {
  const wire = address ? addressToWire(address) : undefined;
  for (const list of lists) {
    if (list === undefined) continue;
    if (!wire) return false;
    if (!list.some((b) => inBlock(b, wire.family, wire.bytes))) return false;
  }
  return true;
}
