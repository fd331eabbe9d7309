/** The baseline: no tunnel, the client connects to the local service itself. */
import { waitReady } from '../lib/net.js';
import type { BenchPath } from './types.js';

/** No tunnel: publicPort is the local port and there are no tunnel processes. */
export const directPath: BenchPath = {
  name: 'direct',
  label: 'direct',
  needs: [],
  async start(localPort, opts) {
    await waitReady(localPort, opts.ready, { timeoutMs: opts.timeoutMs, what: 'local service' });
    return { publicPort: localPort, pids: () => [], stop: async () => {} };
  },
};
