/** The interface every measured path implements: direct, mtt and OpenSSH. */
import type { Probe } from '../lib/net.js';
import type { Scope } from '../lib/procs.js';
import type { Tool } from '../lib/tools.js';
import type { Topology } from '../lib/topology.js';

/** A started path: connect to publicHost:publicPort from the visitor side and reach the service. */
export interface RunningPath {
  /** The address an external client connects to, on the visitor side. */
  publicHost: string;
  /** The port an external client connects to. */
  publicPort: number;
  /** The tunnel's own processes (server and client side) right now; empty for direct. */
  pids(): number[];
  /** Stops the tunnel's processes; bounded in time. */
  stop(): Promise<void>;
}

/** What {@link BenchPath.start} gets besides the local port. */
export interface StartOptions {
  /** Owns every process the path starts, so they end even when stop() is never reached. */
  scope: Scope;
  /** Where the tunnel's server (visitor side) and client (service side) run. */
  topo: Topology;
  /** One attempt to pass bytes end to end through a port; start() resolves once it succeeds. */
  ready: Probe;
  /** Bound on the whole start, readiness included. */
  timeoutMs: number;
  /** Open-file limit for the tunnel's processes (for the many-connections test). */
  nofile: number;
}

/** One way of reaching a local service from outside. */
export interface BenchPath {
  /** Short id, used in JSON and on the command line. */
  name: string;
  /** Column title in the table. */
  label: string;
  /** Programs this path needs. */
  needs: Tool[];
  /** Opens the path to the service's `localPort`; resolves when a connection carries bytes end to end. */
  start(localPort: number, opts: StartOptions): Promise<RunningPath>;
}

/** The path cannot run at all on this machine (e.g. not built): skip its remaining workloads. */
export class PathUnavailable extends Error {
  override name = 'PathUnavailable';
}

/**
 * What a program prints when a port the bench picked was taken before it could listen there: other
 * test runs on the machine listen on ports of their own choosing. A start that fails so is retried on
 * fresh ports ({@link onFreshPorts}).
 */
export const PORT_TAKEN =
  /already in use|EADDRINUSE|port_in_use|is in use on the server|remote port forwarding failed/i;

/**
 * Runs `attempt` (which picks its ports afresh and stops what it started when it fails) until it
 * succeeds or fails for another reason than a taken port; at most `tries` times.
 */
export async function onFreshPorts<T>(tries: number, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= tries || !PORT_TAKEN.test(err instanceof Error ? err.message : String(err))) throw err;
    }
  }
}
