/**
 * Where the bench's processes run and how they reach one another.
 *
 * Two sides: the **visitor** side holds the external client and the tunnel's server (mtt server,
 * sshd); the **service** side holds the tunnel's client (mtt client, ssh -R) and the local service.
 * On loopback both sides are this host. In the WAN profile each side is a network namespace and the
 * emulated WAN lies between them, so every path crosses it exactly once: direct (the visitor dials
 * the service across the WAN), mtt and ssh -R (the visitor dials the tunnel server on its own side,
 * the tunnel carries the bytes across the WAN, the tunnel client dials the service on its side).
 */
import type { Netns } from '../../test/system/lib/netns.js';
import type { Wan } from '../../test/system/lib/wan.js';
import { type Dialer, hostDial, LOOPBACK, type Target } from './net.js';

/** One side of the topology. */
export type Side = 'visitor' | 'service';

/** The network the paths and workloads run in. */
export interface Topology {
  /** 'loopback' or 'wan'. */
  name: string;
  /** The network namespace of each side, or undefined for the host. */
  netns: Record<Side, string | undefined>;
  /** Opens a connection from this process as if it were on `side` (probes only: not for timing). */
  dial: Record<Side, Dialer>;
  /** The address services listen on, on the service side. */
  serviceBind: string;
  /** The address the visitor dials to reach the service directly (the direct path). */
  serviceAddr: string;
  /** The address the tunnel's server listens on (visitor side) and its client dials. */
  serverAddr: string;
  /** The emulated WAN, in the WAN profile. */
  wan?: Wan;
}

/** A target on `side` of the topology. */
export function targetOn(topo: Topology, side: Side, host: string, port: number): Target {
  return { host, port, dial: topo.dial[side] };
}

/** Both sides on this host's loopback. */
export const loopbackTopology: Topology = {
  name: 'loopback',
  netns: { visitor: undefined, service: undefined },
  dial: { visitor: hostDial, service: hostDial },
  serviceBind: LOOPBACK,
  serviceAddr: LOOPBACK,
  serverAddr: LOOPBACK,
};

/** The visitor side in `wan.left`, the service side in `wan.right`. */
export function wanTopology(wan: Wan): Topology {
  const dialer =
    (ns: Netns): Dialer =>
    (host, port) =>
      ns.connect(host, port);
  return {
    name: 'wan',
    netns: { visitor: wan.left.name, service: wan.right.name },
    dial: { visitor: dialer(wan.left), service: dialer(wan.right) },
    // 0.0.0.0 covers the WAN address (direct) and 127.0.0.1 (the tunnel client's local dial).
    serviceBind: '0.0.0.0',
    serviceAddr: wan.rightAddr,
    serverAddr: wan.leftAddr,
    wan,
  };
}
