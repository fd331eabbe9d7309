/** The baseline: no tunnel, the visitor connects to the local service itself. */
import { waitReady } from '../lib/net.js';
import { targetOn } from '../lib/topology.js';
import type { BenchPath } from './types.js';

/** No tunnel: the visitor dials the service's own address and port; there are no tunnel processes. */
export const directPath: BenchPath = {
  name: 'direct',
  label: 'direct',
  needs: [],
  async start(localPort, opts) {
    const host = opts.topo.serviceAddr;
    await waitReady(targetOn(opts.topo, 'visitor', host, localPort), opts.ready, {
      timeoutMs: opts.timeoutMs,
      what: 'local service',
    });
    return { publicHost: host, publicPort: localPort, pids: () => [], stop: async () => {} };
  },
};
