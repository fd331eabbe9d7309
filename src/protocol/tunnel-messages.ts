/**
 * The tunnel group of message records: the client opens and closes tunnels on the control channel, the
 * server answers with their status (docs/PROTOCOL.md, "Tunnels").
 */

import { ProtocolError } from './errors.js';
import { MAX_PERMIT_FROM, MAX_STRING_LEN, MAX_TUNNEL_NAME_LEN } from './limits.js';
import {
  addressLen,
  Flags,
  fixed,
  lenStr,
  nameOf,
  type RecordsOf,
  strBytes,
  u16,
  u32,
} from './message-record.js';

/** TunnelStatus states. */
export const TunnelState = { active: 0, refused: 1, closed: 2 } as const;
export type TunnelStateName = keyof typeof TunnelState;

/** TunnelStatus reasons: a closed set. */
export const TunnelReason = {
  none: 0,
  port_not_allowed: 1,
  port_in_use: 2,
  bind_failed: 3,
  duplicate_tunnel: 4,
  too_many_tunnels: 5,
  invalid: 6,
  closed_by_client: 7,
  revoked: 8,
} as const;
export type TunnelReasonName = keyof typeof TunnelReason;

/** An address block (CIDR): the first `prefix` bits of `address` (4 or 16 bytes). */
export interface AddressBlock {
  family: 4 | 6;
  prefix: number;
  address: Buffer;
}
/**
 * A tunnel's compression as OpenTunnel asks for it: true = LZ4 (no flag), false = none (NO_COMPRESS),
 * 'zstd' = zstd if the server grants it, else LZ4 (ZSTD).
 */
export type TunnelCompression = boolean | 'zstd';

export interface OpenTunnel {
  type: 'OpenTunnel';
  tunnelId: number;
  remotePort: number;
  name: string;
  /** False sets NO_COMPRESS: neither end compresses this tunnel's frames; 'zstd' sets ZSTD. */
  compress: TunnelCompression;
  /** Connections open at once on this tunnel; 0 = no limit. */
  maxConnections: number;
  /** Bytes per second each way on this tunnel; 0 = no limit. */
  rateLimit: number;
  /** Visitors the tunnel accepts (empty = anyone the server allows); at most MAX_PERMIT_FROM. */
  permitFrom: AddressBlock[];
}
export interface CloseTunnel {
  type: 'CloseTunnel';
  tunnelId: number;
}
export interface TunnelStatus {
  type: 'TunnelStatus';
  tunnelId: number;
  state: TunnelStateName;
  reason: TunnelReasonName;
  /** The public port actually bound (0 when refused). */
  port: number;
  /** The public address, "host:port", to show users. */
  address: string;
  message: string;
  /** Effective connection limit after the key's ceiling; 0 = none. */
  maxConnections: number;
  /** Effective rate limit after the key's ceiling, bytes per second each way; 0 = none. */
  rateLimit: number;
  /**
   * Flag ZSTD (0x01): the server granted the OpenTunnel's ZSTD, so both ends may send codec 2 on
   * this tunnel's connections. Only in an `active` answer to an OpenTunnel that asked for it.
   */
  zstd: boolean;
}

/** OpenTunnel's flags for a compression setting. */
function compressionFlags(c: TunnelCompression): number {
  if (c === false) return Flags.NO_COMPRESS;
  return c === 'zstd' ? Flags.ZSTD : 0;
}

/** The compression setting of OpenTunnel's flags; NO_COMPRESS with ZSTD is ERR_MALFORMED. */
function compressionOf(flags: number): TunnelCompression {
  const off = (flags & Flags.NO_COMPRESS) !== 0;
  const zstd = (flags & Flags.ZSTD) !== 0;
  if (off && zstd) throw new ProtocolError('ERR_MALFORMED', 'OpenTunnel: NO_COMPRESS and ZSTD both set');
  return off ? false : zstd ? 'zstd' : true;
}

/** The messages of this group. */
export type TunnelMessage = OpenTunnel | CloseTunnel | TunnelStatus;

/** The tunnel records. */
export const TUNNEL_MESSAGES = {
  OpenTunnel: {
    code: 0x10,
    from: 'client',
    usesStream: true,
    knownFlags: Flags.NO_COMPRESS | Flags.ZSTD,
    header: (m) => ({ streamId: m.tunnelId, flags: compressionFlags(m.compress) }),
    encode: (m) => {
      const name = strBytes(m.name, MAX_TUNNEL_NAME_LEN, 'name');
      if (m.permitFrom.length > MAX_PERMIT_FROM) {
        throw new RangeError(`permitFrom has ${m.permitFrom.length} blocks; at most ${MAX_PERMIT_FROM}`);
      }
      return [
        u16(m.remotePort),
        Buffer.of(name.length),
        name,
        u32(m.maxConnections),
        u32(m.rateLimit),
        Buffer.of(m.permitFrom.length),
        ...m.permitFrom.flatMap((b) => {
          const len = addressLen(b.family, 'permitFrom family');
          if (b.prefix > len * 8) throw new RangeError(`permitFrom prefix /${b.prefix} is too long`);
          return [Buffer.of(b.family, b.prefix), fixed(b.address, len, 'permitFrom address')];
        }),
      ];
    },
    decode: (r, h) => {
      const remotePort = r.u16();
      const name = r.str(MAX_TUNNEL_NAME_LEN, true);
      const maxConnections = r.u32();
      const rateLimit = r.u32();
      const n = r.u8();
      if (n > MAX_PERMIT_FROM)
        throw new ProtocolError(
          'ERR_MALFORMED',
          `OpenTunnel: ${n} permit-from blocks; at most ${MAX_PERMIT_FROM}`,
        );
      const permitFrom: AddressBlock[] = [];
      for (let i = 0; i < n; i++) {
        const family = r.family();
        const prefix = r.u8();
        if (prefix > (family === 4 ? 32 : 128))
          throw new ProtocolError('ERR_MALFORMED', `OpenTunnel: prefix /${prefix} for IPv${family}`);
        permitFrom.push({ family, prefix, address: r.bytes(family === 4 ? 4 : 16) });
      }
      return {
        type: 'OpenTunnel',
        tunnelId: h.streamId,
        remotePort,
        name,
        compress: compressionOf(h.flags),
        maxConnections,
        rateLimit,
        permitFrom,
      };
    },
  },
  CloseTunnel: {
    code: 0x11,
    from: 'client',
    usesStream: true,
    knownFlags: 0,
    header: (m) => ({ streamId: m.tunnelId }),
    encode: () => [],
    decode: (_r, h) => ({ type: 'CloseTunnel', tunnelId: h.streamId }),
  },
  TunnelStatus: {
    code: 0x12,
    from: 'server',
    usesStream: true,
    knownFlags: Flags.ZSTD_GRANTED,
    header: (m) => ({ streamId: m.tunnelId, flags: m.zstd ? Flags.ZSTD_GRANTED : 0 }),
    encode: (m) => [
      Buffer.of(TunnelState[m.state], TunnelReason[m.reason]),
      u16(m.port),
      ...lenStr(m.address, MAX_STRING_LEN, 'address'),
      ...lenStr(m.message, MAX_STRING_LEN, 'message'),
      u32(m.maxConnections),
      u32(m.rateLimit),
    ],
    decode: (r, h) => ({
      type: 'TunnelStatus',
      tunnelId: h.streamId,
      state: nameOf(TunnelState, r.u8(), 'tunnel state'),
      reason: nameOf(TunnelReason, r.u8(), 'tunnel reason'),
      port: r.u16(),
      address: r.str(MAX_STRING_LEN),
      message: r.str(MAX_STRING_LEN),
      maxConnections: r.u32(),
      rateLimit: r.u32(),
      zstd: (h.flags & Flags.ZSTD_GRANTED) !== 0,
    }),
  },
} as const satisfies RecordsOf<TunnelMessage>;
