/**
 * A reference, not a tunnel: two plain Node.js processes in a row that pipe sockets (no framing, no
 * compression, no encryption). It shows what two Node processes in the path cost on this machine
 * before any tunnel work, next to mtt (two Node processes plus all of that) and ssh -R (two C ones).
 */
import { fileURLToPath } from 'node:url';
import { freePort, LOOPBACK, loopbackTarget, waitReady } from '../lib/net.js';
import { isAlive } from '../lib/procs.js';
import { type BenchPath, PathUnavailable } from './types.js';

const HELPER = fileURLToPath(new URL('../helper.js', import.meta.url));

/** Two `helper.js relay` processes: public port -> relay 1 -> relay 2 -> local service. */
export const nodeRelayPath: BenchPath = {
  name: 'node-relay',
  label: 'plain Node relay ×2 (no crypto)',
  needs: [],
  async start(localPort, opts) {
    const { scope } = opts;
    const [first, second] = [await freePort(), await freePort()];
    const spawnRelay = (name: string, port: number, to: number) =>
      scope.spawn(name, process.execPath, [HELPER, 'relay', '--port', String(port), '--to', String(to)], {
        stdin: true,
        nofile: opts.nofile,
      });
    const far = spawnRelay('relay-2', second, localPort);
    const near = spawnRelay('relay-1', first, second);
    if (opts.topo.name !== 'loopback')
      throw new PathUnavailable('the plain Node relay runs on loopback only');
    await waitReady(loopbackTarget(first), opts.ready, {
      timeoutMs: opts.timeoutMs,
      what: 'node relay',
      failFast: () => (near.exit ? near.describeExit() : far.exit ? far.describeExit() : undefined),
    });
    return {
      publicHost: LOOPBACK,
      publicPort: first,
      pids: () =>
        [near, far]
          .filter((p) => !p.exit)
          .map((p) => p.pid)
          .filter(isAlive),
      async stop() {
        await near.stop(2000);
        await far.stop(2000);
      },
    };
  },
};
