/**
 * PROXY protocol headers (HAProxy's "The PROXY protocol, versions 1 & 2"), written by the client to
 * the local service before any byte of a tunneled connection, so the service sees the visitor's
 * address instead of the client's. The addresses come from the server's IncomingConn: the visitor
 * (source) and the public address it connected to (destination), both of one family.
 */
import { wireToAddress } from '../transport/addresses.js';

/** The 12-byte signature that starts every version 2 header (spec section 2.2). */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** Version 2, command PROXY (the connection was relayed on behalf of another node). */
const V2_PROXY_COMMAND = 0x21;
/** TCP over IPv4, and over IPv6 (address family in the high nibble, STREAM in the low one). */
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;

/** A connection's endpoints, as IncomingConn carries them. */
export interface ProxiedEndpoints {
  family: 4 | 6;
  srcAddr: Buffer;
  srcPort: number;
  dstAddr: Buffer;
  dstPort: number;
}

/**
 * The header for `ends`: version 1 is one text line (`PROXY TCP4 SRC DST SPORT DPORT\r\n`, at most
 * 104 bytes), version 2 the binary block (16 bytes, then 12 address bytes for IPv4 or 36 for IPv6).
 */
export function proxyHeader(version: 'v1' | 'v2', ends: ProxiedEndpoints): Buffer {
  const len = ends.family === 4 ? 4 : 16;
  if (ends.srcAddr.length !== len || ends.dstAddr.length !== len) {
    throw new RangeError(`PROXY header: IPv${ends.family} addresses must be ${len} bytes`);
  }
  if (version === 'v1') {
    const src = wireToAddress(ends.family, ends.srcAddr);
    const dst = wireToAddress(ends.family, ends.dstAddr);
    return Buffer.from(`PROXY TCP${ends.family} ${src} ${dst} ${ends.srcPort} ${ends.dstPort}\r\n`, 'latin1');
  }
  const body = 2 * len + 4;
  const out = Buffer.alloc(16 + body);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = V2_PROXY_COMMAND;
  out[13] = ends.family === 4 ? V2_TCP4 : V2_TCP6;
  out.writeUInt16BE(body, 14);
  ends.srcAddr.copy(out, 16);
  ends.dstAddr.copy(out, 16 + len);
  out.writeUInt16BE(ends.srcPort, 16 + 2 * len);
  out.writeUInt16BE(ends.dstPort, 18 + 2 * len);
  return out;
}
