/** TunnelRegistry on its own: real listeners on loopback, the statuses it reports, narrowing. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { OpenTunnel, TunnelStatus } from '../../src/protocol/messages.js';
import type { BrokerTunnel } from '../../src/server/channel-broker.js';
import { Metrics } from '../../src/server/metrics.js';
import { TunnelRegistry } from '../../src/server/tunnel-registry.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort } from '../e2e/harness.js';

function makeRegistry(
  t: TestContext,
  opts: {
    keyRanges?: Array<{ low: number; high: number }>;
    ceilings?: { maxConnections: number; rateLimit: number };
    zstd?: boolean;
  } = {},
) {
  const statuses: TunnelStatus[] = [];
  const incoming: BrokerTunnel[] = [];
  const closed: number[] = [];
  let wake: (() => void) | undefined;
  const registry = new TunnelRegistry({
    bindHost: '127.0.0.1',
    displayHost: '127.0.0.1',
    serverRanges: [{ low: 1024, high: 65535 }],
    keyRanges: opts.keyRanges ?? [{ low: 1, high: 65535 }],
    ceilings: opts.ceilings ?? { maxConnections: 0, rateLimit: 0 },
    zstd: opts.zstd ?? true,
    metrics: new Metrics(),
    log: silentLogger,
    hooks: {
      status: (m) => {
        statuses.push(m);
        wake?.();
      },
      incoming: (tunnel, socket) => {
        incoming.push(tunnel);
        socket.destroy();
        wake?.();
      },
      tunnelClosed: (id) => closed.push(id),
    },
  });
  t.after(() => registry.closeAll());
  /** The next status for `tunnelId`. */
  const status = async (tunnelId: number): Promise<TunnelStatus> => {
    for (;;) {
      const i = statuses.findIndex((s) => s.tunnelId === tunnelId);
      if (i >= 0) return statuses.splice(i, 1)[0]!;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  };
  return { registry, status, incoming, closed, statuses };
}

const open = (tunnelId: number, remotePort: number, over: Partial<OpenTunnel> = {}): OpenTunnel => ({
  type: 'OpenTunnel',
  tunnelId,
  remotePort,
  name: `t${tunnelId}`,
  compress: true,
  maxConnections: 0,
  rateLimit: 0,
  permitFrom: [],
  ...over,
});

describe('TunnelRegistry', () => {
  test('an allowed port opens: active, its address, the effective limits; visitors reach the hook', async (t) => {
    const { registry, status, incoming } = makeRegistry(t, { ceilings: { maxConnections: 5, rateLimit: 0 } });
    const port = await freePort();
    registry.open(open(1, port, { compress: false, maxConnections: 10, rateLimit: 1000 }));
    const s = await status(1);
    assert.deepEqual(
      {
        state: s.state,
        reason: s.reason,
        port: s.port,
        address: s.address,
        max: s.maxConnections,
        rate: s.rateLimit,
      },
      { state: 'active', reason: 'none', port, address: `127.0.0.1:${port}`, max: 5, rate: 1000 },
    );
    assert.deepEqual(registry.ports, [port]);
    const c = connect({ host: '127.0.0.1', port });
    c.on('error', () => {});
    await once(c, 'connect');
    while (incoming.length === 0) await new Promise((r) => setImmediate(r));
    assert.equal(incoming[0]!.compress, false);
    assert.equal(incoming[0]!.tunnelId, 1);
    c.destroy();
  });

  test('zstd is granted only when the tunnel asks and the server has it; the codec follows the grant', async (t) => {
    const cases = [
      { server: true, compress: 'zstd', granted: true, codec: 'zstd' },
      { server: false, compress: 'zstd', granted: false, codec: 'lz4' },
      { server: true, compress: true, granted: false, codec: 'lz4' },
      { server: true, compress: false, granted: false, codec: false },
    ] as const;
    for (const [i, c] of cases.entries()) {
      const { registry, status } = makeRegistry(t, { zstd: c.server });
      const port = await freePort();
      registry.open(open(i + 1, port, { compress: c.compress }));
      const s = await status(i + 1);
      assert.equal(s.state, 'active');
      assert.equal(s.zstd, c.granted, JSON.stringify(c));
      assert.equal(registry.list()[0]!.compress, c.codec, JSON.stringify(c));
    }
    // A refusal never grants it.
    const { registry, status } = makeRegistry(t, { zstd: true });
    registry.open(open(9, 0, { compress: 'zstd' }));
    const refused = await status(9);
    assert.equal(refused.state, 'refused');
    assert.equal(refused.zstd, false);
  });

  test('refusals: outside the ranges, a duplicate id, a port taken by a tunnel or by another process', async (t) => {
    const { registry, status } = makeRegistry(t, { keyRanges: [{ low: 20000, high: 40000 }] });
    registry.open(open(1, 80));
    assert.equal((await status(1)).reason, 'port_not_allowed');
    registry.open(open(2, 50000));
    assert.equal((await status(2)).reason, 'port_not_allowed');
    const port = 20000 + Math.floor(Math.random() * 10000);
    const taken = createServer();
    await new Promise<void>((resolve, reject) => {
      taken.once('error', reject);
      taken.listen({ host: '127.0.0.1', port }, resolve);
    });
    t.after(() => taken.close());
    registry.open(open(3, port));
    const s3 = await status(3);
    assert.deepEqual([s3.state, s3.reason], ['refused', 'port_in_use']);
    taken.close();
    await once(taken, 'close');
    registry.open(open(4, port));
    assert.equal((await status(4)).state, 'active');
    registry.open(open(4, port + 1));
    assert.equal((await status(4)).reason, 'duplicate_tunnel');
    registry.open(open(5, port));
    assert.equal((await status(5)).reason, 'port_in_use');
  });

  test('close reports closed_by_client and frees the port; closeAll reports nothing', async (t) => {
    const { registry, status, closed, statuses } = makeRegistry(t);
    const p1 = await freePort();
    const p2 = await freePort();
    registry.open(open(1, p1));
    registry.open(open(2, p2));
    await status(1);
    await status(2);
    registry.close(1);
    const s = await status(1);
    assert.deepEqual([s.state, s.reason, s.port], ['closed', 'closed_by_client', p1]);
    assert.deepEqual(closed, [1]);
    registry.closeAll();
    assert.deepEqual(closed, [1, 2]);
    assert.equal(statuses.length, 0);
    assert.deepEqual(registry.ports, []);
  });

  test('narrow(): tunnels outside the new ranges close with reason revoked; the new ranges apply to opens', async (t) => {
    const { registry, status } = makeRegistry(t);
    const keep = 30000 + Math.floor(Math.random() * 1000);
    const lose = 31500 + Math.floor(Math.random() * 1000);
    registry.open(open(1, keep));
    registry.open(open(2, lose));
    await status(1);
    await status(2);
    const closedPorts = registry.narrow([{ low: 30000, high: 31000 }]);
    assert.deepEqual([...closedPorts], [lose]);
    const s = await status(2);
    assert.deepEqual([s.state, s.reason], ['closed', 'revoked']);
    assert.deepEqual(registry.ports, [keep]);
    registry.open(open(3, lose));
    assert.equal((await status(3)).reason, 'port_not_allowed');
  });
});
