/**
 * The channel group of message records: what flows once a session is up — a visitor assigned to a data
 * channel, the server asking for more channels, heartbeats, errors and the relayed bytes
 * (docs/PROTOCOL.md, "Data channels" and "Relaying").
 */

import { ProtocolError } from './errors.js';
import { MAX_PAYLOAD, MAX_STRING_LEN } from './limits.js';
import { addressLen, Flags, fixed, lenStr, nameOf, type RecordsOf, u16, u32 } from './message-record.js';

/** Error codes carried in Error messages: a closed set. */
export const ErrorCode = {
  protocol: 1,
  target_unreachable: 2,
  internal: 3,
  reset: 4,
  not_found: 5,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

/** Sent on an idle data channel: this channel now carries the visitor conn_id. */
export interface IncomingConn {
  type: 'IncomingConn';
  connId: number;
  tunnelId: number;
  /** 4 or 6: the length of both addresses (4 or 16 bytes); an IPv4-mapped IPv6 visitor is 4. */
  family: 4 | 6;
  /** The visitor's address and port. */
  srcAddr: Buffer;
  srcPort: number;
  /** The public address and port the visitor connected to. */
  dstAddr: Buffer;
  dstPort: number;
}
/** The server has visitors waiting and no idle channel: open this many more. */
export interface ChannelsWanted {
  type: 'ChannelsWanted';
  count: number;
}
export interface Heartbeat {
  type: 'Heartbeat';
  reply: boolean;
  seq: number;
}
export interface ErrorMsg {
  type: 'Error';
  /** conn_id or tunnel_id the error is about; 0 for the channel itself. */
  streamId: number;
  code: ErrorCodeName;
  message: string;
}
export interface Data {
  type: 'Data';
  fin: boolean;
  payload: Buffer;
  /**
   * The payload as the decoder decrypted it, in pieces, when the frame arrived in several reads: a
   * relay writes these without joining them (`payload` joins them on first use).
   */
  pieces?: readonly Buffer[];
}

/** The messages of this group. */
export type ChannelMessage = IncomingConn | ChannelsWanted | Heartbeat | ErrorMsg | Data;

/** A Data message whose payload is kept in pieces until someone reads `payload`. */
export function dataFromPieces(fin: boolean, pieces: readonly Buffer[]): Data {
  let joined: Buffer | undefined;
  return {
    type: 'Data',
    fin,
    pieces,
    get payload(): Buffer {
      joined ??= pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
      return joined;
    },
  };
}

/** The channel records. */
export const CHANNEL_MESSAGES = {
  IncomingConn: {
    code: 0x20,
    from: 'server',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.connId }),
    encode: (m) => {
      const len = addressLen(m.family, 'IncomingConn family');
      return [
        u32(m.tunnelId),
        Buffer.of(m.family),
        fixed(m.srcAddr, len, 'srcAddr'),
        u16(m.srcPort),
        fixed(m.dstAddr, len, 'dstAddr'),
        u16(m.dstPort),
      ];
    },
    decode: (r, h) => {
      const tunnelId = r.u32();
      const family = r.family();
      const len = family === 4 ? 4 : 16;
      return {
        type: 'IncomingConn',
        connId: h.streamId,
        tunnelId,
        family,
        srcAddr: r.bytes(len),
        srcPort: r.u16(),
        dstAddr: r.bytes(len),
        dstPort: r.u16(),
      };
    },
  },
  ChannelsWanted: {
    code: 0x22,
    from: 'server',
    usesStream: false,
    knownFlags: 0,
    header: () => ({}),
    encode: (m) => [u16(m.count)],
    decode: (r) => ({ type: 'ChannelsWanted', count: r.u16() }),
  },
  Heartbeat: {
    code: 0x30,
    from: 'both',
    usesStream: false,
    knownFlags: Flags.REPLY,
    header: (m) => ({ flags: m.reply ? Flags.REPLY : 0 }),
    encode: (m) => [u32(m.seq)],
    decode: (r, h) => ({ type: 'Heartbeat', reply: (h.flags & Flags.REPLY) !== 0, seq: r.u32() }),
  },
  Error: {
    code: 0x31,
    from: 'both',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.streamId }),
    encode: (m) => [u16(ErrorCode[m.code]), ...lenStr(m.message, MAX_STRING_LEN, 'message')],
    decode: (r, h) => ({
      type: 'Error',
      streamId: h.streamId,
      code: nameOf(ErrorCode, r.u16(), 'error code'),
      message: r.str(MAX_STRING_LEN),
    }),
  },
  Data: {
    code: 0x40,
    from: 'both',
    usesStream: false,
    knownFlags: Flags.FIN,
    header: (m) => ({ flags: m.fin ? Flags.FIN : 0 }),
    encode: (m) => {
      if (m.payload.length > MAX_PAYLOAD) {
        throw new RangeError(`Data payload of ${m.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
      }
      return [m.payload];
    },
    decode: (r, h) => {
      const payload = r.rest();
      if (payload.length > MAX_PAYLOAD)
        throw new ProtocolError('ERR_MALFORMED', `Data payload exceeds ${MAX_PAYLOAD}`);
      return { type: 'Data', fin: (h.flags & Flags.FIN) !== 0, payload };
    },
  },
} as const satisfies RecordsOf<ChannelMessage>;
