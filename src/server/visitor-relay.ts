/**
 * One visitor relayed over one data channel, as the ChannelBroker starts it: the IncomingConn that
 * names the visitor to the client, then relay() between the channel and the visitor's socket, counted
 * on the tunnel (bytes each way, time spent rate-limited, refusals by the client's target).
 */
import type { Socket } from 'node:net';
import type { CompressedCodec } from '../protocol/frame-codec.js';
import type { IncomingConn } from '../protocol/messages.js';
import { addressToWire, type WireAddress } from '../transport/addresses.js';
import type { ServerConnection } from '../transport/handshake.js';
import type { Throttle } from '../transport/rate-limiter.js';
import { type RelayEnd, type RelayHandle, relay } from '../transport/relay.js';
import type { TunnelCounters } from './metrics.js';
import type { Block } from './visitor-filter.js';

/** What the broker knows of the tunnel a visitor came in on. */
export interface BrokerTunnel {
  tunnelId: number;
  name: string;
  port: number;
  /**
   * The codec the tunnel's frames are compressed with (while its links back up): 'zstd' when the
   * tunnel asked for it and this server granted it, else 'lz4'; false when it asked for NO_COMPRESS.
   */
  compress: CompressedCodec | false;
  counters: TunnelCounters;
  /** The tunnel's own permitFrom (OpenTunnel); undefined = anyone the key allows. */
  permitFrom?: readonly Block[];
  /** The tunnel's rate limit, shared by its connections: `in` from visitors, `out` to them. */
  limit?: { in: Throttle; out: Throttle };
}

/**
 * The IncomingConn for a visitor's socket, or undefined when the socket has no addresses any more
 * (the visitor is already gone).
 */
export function incomingConn(socket: Socket, tunnelId: number, connId: number): IncomingConn | undefined {
  const addresses = visitorAddresses(socket);
  if (!addresses) return undefined;
  return {
    type: 'IncomingConn',
    connId,
    tunnelId,
    family: addresses.src.family,
    srcAddr: addresses.src.bytes,
    srcPort: socket.remotePort ?? 0,
    dstAddr: addresses.dst.bytes,
    dstPort: socket.localPort ?? 0,
  };
}

/**
 * Relays `socket` over `conn` under the tunnel's rate limit, counting on the tunnel. `onEnd` comes
 * after the counters are updated; `reuse` as in relay().
 */
export function relayVisitor(
  conn: ServerConnection,
  socket: Socket,
  tunnel: BrokerTunnel,
  hooks: { onEnd(end: RelayEnd): void; reuse(): boolean },
): RelayHandle {
  const { counters, limit } = tunnel;
  counters.activeConnections += 1;
  counters.totalConnections += 1;
  return relay(conn, socket, {
    ...(limit
      ? {
          limit: { fromSocket: limit.in, toSocket: limit.out },
          onLimited: (direction, ms) => {
            counters.rateLimitedMs[direction === 'fromSocket' ? 'in' : 'out'] += ms;
          },
        }
      : {}),
    onToSocket: (n) => {
      counters.bytesOut += n;
    },
    onFromSocket: (n) => {
      counters.bytesIn += n;
    },
    onEnd: (end) => {
      counters.activeConnections -= 1;
      if (end.refused) counters.pairingFailures += 1;
      hooks.onEnd(end);
    },
    // After FIN both ways the channel is idle again on both sides.
    reuse: hooks.reuse,
  });
}

/** The visitor's and the public listener's addresses in wire form, both of one family. */
function visitorAddresses(socket: Socket): { src: WireAddress; dst: WireAddress } | undefined {
  const src = socket.remoteAddress ? addressToWire(socket.remoteAddress) : undefined;
  const dst = socket.localAddress ? addressToWire(socket.localAddress) : undefined;
  if (!src || !dst) return undefined;
  if (src.family === dst.family) return { src, dst };
  // Mixed families cannot happen on one socket; map the IPv4 side into IPv6 to be safe.
  const v6 = (w: WireAddress): WireAddress =>
    w.family === 6
      ? w
      : { family: 6, bytes: Buffer.concat([Buffer.from('00000000000000000000ffff', 'hex'), w.bytes]) };
  return { src: v6(src), dst: v6(dst) };
}
