/**
 * DataChannelPool on its own, against a small server that runs the real data-channel handshake on
 * loopback and keeps the proven channels for the test to drive.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { DataChannelPool } from '../../src/client/data-channels.js';
import { decodeClientMessage, type IncomingConn } from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import {
  type ClientConnection,
  runDataServerHandshake,
  type ServerConnection,
} from '../../src/transport/handshake.js';
import { silentLogger } from '../../src/util/logger.js';
import { loopbackListener, until } from './helpers.js';

async function fakeServer(t: TestContext) {
  const l = await loopbackListener(t);
  const sessionId = randomBytes(16);
  const sessionSecret = randomBytes(32);
  const proven: ServerConnection[] = [];
  const heard: string[] = [];
  void (async () => {
    for (;;) {
      const socket = await l.next();
      const conn: ServerConnection = new FramedConnection(socket, decodeClientMessage);
      t.after(() => conn.close());
      void (async () => {
        const hello = await conn.receive(2000);
        if (hello.type !== 'DataHello') return conn.close();
        runDataServerHandshake(conn, hello, sessionSecret);
        const proof = await conn.receive(2000);
        heard.push(proof.type);
        proven.push(conn);
      })().catch(() => conn.close());
    }
  })();
  return { port: l.port, sessionId, sessionSecret, proven, heard };
}

function pool(
  t: TestContext,
  srv: Awaited<ReturnType<typeof fakeServer>>,
  poolSize: number,
  keepaliveMs = 60_000,
) {
  const incoming: Array<{ conn: ClientConnection; msg: IncomingConn }> = [];
  const p = new DataChannelPool({
    host: '127.0.0.1',
    port: srv.port,
    sessionId: srv.sessionId,
    sessionSecret: srv.sessionSecret,
    poolSize,
    timeoutMs: 2000,
    keepaliveMs,
    log: silentLogger,
    onIncoming: (conn, msg) => incoming.push({ conn, msg }),
  });
  t.after(() => p.close({ dropConnections: true }));
  return { p, incoming };
}

const assignment = (connId: number): IncomingConn => ({
  type: 'IncomingConn',
  connId,
  tunnelId: 1,
  family: 4,
  srcAddr: Buffer.from([192, 0, 2, 1]),
  srcPort: 1000,
  dstAddr: Buffer.from([192, 0, 2, 2]),
  dstPort: 2000,
});

describe('DataChannelPool', { timeout: 30_000 }, () => {
  test('fill() opens poolSize channels, each proven by a Heartbeat first; want() opens more', async (t) => {
    const srv = await fakeServer(t);
    const { p } = pool(t, srv, 3);
    p.fill();
    await until(() => srv.proven.length === 3, 5000, 'three proven channels');
    await until(() => p.stats().idle === 3, 2000, 'three idle');
    assert.deepEqual(srv.heard, ['Heartbeat', 'Heartbeat', 'Heartbeat']);
    p.want(2);
    await until(() => srv.proven.length === 5, 5000, 'two more');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(srv.proven.length, 5, 'no more than asked');
  });

  test('the server assigns a visitor: the channel leaves the pool, onIncoming has it, the pool refills', async (t) => {
    const srv = await fakeServer(t);
    const { p, incoming } = pool(t, srv, 1);
    p.fill();
    await until(() => p.stats().idle === 1 && srv.proven.length === 1, 5000, 'idle at both ends');
    srv.proven[0]!.send(assignment(7));
    await until(() => incoming.length === 1, 2000, 'assigned');
    assert.equal(incoming[0]!.msg.connId, 7);
    assert.deepEqual(p.stats().busy, 1);
    await until(() => srv.proven.length === 2 && p.stats().idle === 1, 5000, 'refilled');
    // A clean end brings it back.
    assert.equal(p.release(incoming[0]!.conn), true);
    assert.deepEqual([p.stats().idle, p.stats().busy], [2, 0]);
  });

  test('a channel the server ends leaves the pool at once and is never handed out', async (t) => {
    const srv = await fakeServer(t);
    const { p, incoming } = pool(t, srv, 1);
    p.fill();
    await until(() => p.stats().idle === 1 && srv.proven.length === 1, 5000, 'idle at both ends');
    const first = srv.proven[0]!;
    first.end();
    await until(() => srv.proven.length === 2, 5000, 'replaced');
    await until(() => p.stats().idle === 1, 5000, 'the replacement idles');
    // An assignment sent on the ended channel can never arrive; the replacement works.
    srv.proven[1]!.send(assignment(9));
    await until(() => incoming.length === 1, 2000, 'assigned');
    assert.equal(incoming[0]!.msg.connId, 9);
  });

  test('idle channels send a keepalive every interval; close({ dropConnections }) closes busy ones too', async (t) => {
    const srv = await fakeServer(t);
    const { p, incoming } = pool(t, srv, 2, 40);
    p.fill();
    await until(() => p.stats().idle === 2 && srv.proven.length === 2, 5000, 'idle at both ends');
    const beats: number[] = [];
    srv.proven[0]!.onMessage((m) => {
      if (m.type === 'Heartbeat') beats.push(Date.now());
    });
    await until(() => beats.length >= 3, 2000, 'three keepalives');
    srv.proven[1]!.send(assignment(1));
    await until(() => incoming.length === 1, 2000, 'assigned');
    const busy = incoming[0]!.conn;
    await p.close({ dropConnections: true });
    assert.equal(busy.closed, true);
    assert.deepEqual(p.stats().idle, 0);
    await p.drained;
  });
});
