/**
 * ChannelBroker on its own: real loopback sockets for visitors and keyed data channels, a scripted
 * control channel (what it asks for, whether the client answers a probe).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ServerMessage } from '../../src/protocol/messages.js';
import { type BrokerLimits, type BrokerTunnel, ChannelBroker } from '../../src/server/channel-broker.js';
import { Metrics } from '../../src/server/metrics.js';
import type { ClientConnection } from '../../src/transport/handshake.js';
import { silentLogger } from '../../src/util/logger.js';
import { closedHow, keyedChannel, loopbackListener, until } from './helpers.js';

interface Script {
  wanted: number[];
  alive: boolean;
  probes: number;
  heard: number;
  /** The probe goes unanswered, but something else came from the client meanwhile. */
  heardDuringProbe?: boolean;
}

function makeBroker(t: TestContext, limits: Partial<BrokerLimits> = {}, heartbeatMs = 60_000) {
  const script: Script = { wanted: [], alive: true, probes: 0, heard: Date.now() };
  const broker = new ChannelBroker({
    session: {
      wantChannels: (n) => script.wanted.push(n),
      probe: async () => {
        script.probes += 1;
        await new Promise((r) => setTimeout(r, 20));
        if (script.alive || script.heardDuringProbe) script.heard = Date.now();
        return script.alive;
      },
      lastHeardAt: () => script.heard,
    },
    log: silentLogger,
    heartbeatMs,
    clientAddress: '127.0.0.1',
    limits: { freshMs: 60_000, ...limits },
  });
  t.after(() => broker.close('test over'));
  return { broker, script };
}

const metrics = new Metrics();
function tunnel(over: Partial<BrokerTunnel> = {}): BrokerTunnel {
  return {
    tunnelId: 7,
    name: 't',
    port: 4000,
    compress: 'lz4',
    counters: metrics.tunnel(4000, 't'),
    ...over,
  };
}

/** A proven idle channel in the broker; returns the client's end. */
async function provenChannel(t: TestContext, broker: ChannelBroker): Promise<ClientConnection> {
  const { server, client } = await keyedChannel(t);
  assert.ok(broker.prove(server, '127.0.0.1'));
  client.send({ type: 'Heartbeat', reply: false, seq: 0 });
  return client;
}

/** A visitor: the broker gets the accepted (paused) socket, the test keeps the dialling end. */
async function visitorFactory(t: TestContext) {
  const l = await loopbackListener(t, { pauseOnConnect: true });
  const { connect } = await import('node:net');
  return async (): Promise<{ accepted: Socket; external: Socket }> => {
    const external = connect({ host: '127.0.0.1', port: l.port, allowHalfOpen: true });
    external.on('error', () => {});
    t.after(() => external.destroy());
    const [accepted] = await Promise.all([l.next(), once(external, 'connect')]);
    return { accepted, external };
  };
}

describe('ChannelBroker', { timeout: 30_000 }, () => {
  test('a proven channel is assigned: IncomingConn with both addresses, then the visitor bytes', async (t) => {
    const { broker } = makeBroker(t);
    const client = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'the channel idles');
    const visit = await visitorFactory(t);
    const { accepted, external } = await visit();
    external.write('GET /');
    broker.visitor(accepted, tunnel());
    const incoming = await client.receive(2000);
    assert.equal(incoming.type, 'IncomingConn');
    if (incoming.type !== 'IncomingConn') return;
    assert.equal(incoming.tunnelId, 7);
    assert.equal(incoming.family, 4);
    assert.deepEqual([...incoming.srcAddr], [127, 0, 0, 1]);
    assert.equal(incoming.srcPort, external.localPort);
    assert.equal(incoming.dstPort, external.remotePort);
    assert.equal(incoming.connId > 0, true);
    const data = await client.receive(2000);
    assert.equal(data.type === 'Data' && data.payload.toString(), 'GET /');
    assert.deepEqual(broker.stats(), { waiting: 0, proving: 0, idle: 0, active: 1 });
  });

  test('a first frame other than a Heartbeat, or none within the proof deadline, closes the channel', async (t) => {
    const { broker } = makeBroker(t, { proofTimeoutMs: 200 });
    const wrong = await keyedChannel(t);
    assert.ok(broker.prove(wrong.server, '127.0.0.1'));
    wrong.client.send({ type: 'Data', fin: false, payload: Buffer.from('x') });
    await new Promise<void>((r) => wrong.server.onClose(() => r()));
    const silent = await keyedChannel(t);
    const started = Date.now();
    assert.ok(broker.prove(silent.server, '127.0.0.1'));
    await new Promise<void>((r) => silent.server.onClose(() => r()));
    const took = Date.now() - started;
    assert.ok(took >= 150 && took < 1500, `closed after ${took} ms with a 200 ms proof deadline`);
    assert.equal(broker.stats().proving, 0);
  });

  test("unproven channels have two budgets: the client's address, and every other address", async (t) => {
    const { broker } = makeBroker(t, { maxProving: 2, maxProvingForeign: 1 });
    const chans = await Promise.all([1, 2, 3, 4, 5].map(() => keyedChannel(t)));
    assert.equal(broker.prove(chans[0]!.server, '192.0.2.9'), true, 'first foreign');
    assert.equal(broker.prove(chans[1]!.server, '192.0.2.10'), false, 'foreign budget spent');
    assert.equal(broker.prove(chans[2]!.server, '127.0.0.1'), true, 'own 1');
    assert.equal(broker.prove(chans[3]!.server, '127.0.0.1'), true, 'own 2: foreign ones did not take it');
    assert.equal(broker.prove(chans[4]!.server, '127.0.0.1'), false, 'own budget spent');
  });

  test('no idle channel: ChannelsWanted, and the next proven channel takes the oldest visitor', async (t) => {
    const { broker, script } = makeBroker(t);
    const visit = await visitorFactory(t);
    const a = await visit();
    const b = await visit();
    broker.visitor(a.accepted, tunnel());
    broker.visitor(b.accepted, tunnel());
    assert.deepEqual(script.wanted, [1, 1]);
    assert.equal(broker.stats().waiting, 2);
    const c1 = await provenChannel(t, broker);
    const first = await c1.receive(2000);
    assert.equal(first.type === 'IncomingConn' && first.srcPort, a.external.localPort);
    const c2 = await provenChannel(t, broker);
    const second = await c2.receive(2000);
    assert.equal(second.type === 'IncomingConn' && second.srcPort, b.external.localPort);
  });

  test('a visitor that waits too long is reset and counted', async (t) => {
    const { broker } = makeBroker(t, { channelWaitMs: 150 });
    const visit = await visitorFactory(t);
    const { accepted, external } = await visit();
    const counters = metrics.tunnel(4100, 'wait');
    const before = counters.pairingFailures;
    const started = Date.now();
    broker.visitor(accepted, tunnel({ counters, port: 4100 }));
    const how = await closedHow(external);
    assert.ok(how.reset, 'reset, not a clean end');
    assert.ok(how.at - started < 1000, `after ${how.at - started} ms`);
    assert.equal(counters.pairingFailures, before + 1);
    assert.equal(broker.stats().waiting, 0);
  });

  test('after FIN both ways the same channel carries the next visitor; beyond maxIdle it is ended', async (t) => {
    const { broker } = makeBroker(t, { maxIdle: 1 });
    const client = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    const visit = await visitorFactory(t);
    for (let i = 0; i < 3; i++) {
      const { accepted, external } = await visit();
      broker.visitor(accepted, tunnel());
      const inc = await client.receive(2000);
      assert.equal(inc.type, 'IncomingConn', `visitor ${i} came on the same channel`);
      external.end('q');
      const d = await client.receive(2000);
      assert.equal(d.type === 'Data' && d.payload.toString(), 'q');
      const fin = await client.receive(2000);
      assert.deepEqual(fin.type === 'Data' && [fin.fin, fin.payload.length], [true, 0]);
      client.send({ type: 'Data', fin: true, payload: Buffer.from('a') });
      const got: Buffer[] = [];
      for await (const c of external) got.push(c as Buffer);
      assert.equal(Buffer.concat(got).toString(), 'a');
      await until(() => broker.stats().idle === 1, 2000, `channel idle again after visitor ${i}`);
    }
    // A second channel coming back when one is idle already is over the cap: it is ended.
    const extra = await provenChannel(t, broker);
    await new Promise<void>((r) => extra.onEnd(() => r()));
    assert.equal(broker.stats().idle, 1);
  });

  test('an idle channel the client ends leaves at once and is never assigned', async (t) => {
    const { broker } = makeBroker(t);
    const gone = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    gone.end();
    await until(() => broker.stats().idle === 0, 2000, 'the ended channel leaves');
    const visit = await visitorFactory(t);
    const { accepted } = await visit();
    broker.visitor(accepted, tunnel());
    assert.equal(broker.stats().waiting, 1, 'the visitor waits for a live channel instead');
  });

  test('an idle channel silent for three heartbeat intervals is dropped', async (t) => {
    const { broker } = makeBroker(t, {}, 50);
    const client = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    const started = Date.now();
    await new Promise<void>((r) => client.onEnd(() => r()));
    const took = Date.now() - started;
    assert.ok(took >= 100 && took < 2000, `dropped after ${took} ms (3 x 50 ms)`);
    assert.equal(broker.stats().idle, 0);
  });

  test('a client that does not answer its probe: waiting and unanswered visitors are reset, new ones at once', async (t) => {
    const { broker, script } = makeBroker(t, { freshMs: 10 });
    script.alive = false;
    script.heard = Date.now() - 1000;
    const visit = await visitorFactory(t);
    const waiting = await visit();
    const started = Date.now();
    broker.visitor(waiting.accepted, tunnel());
    const how = await closedHow(waiting.external);
    assert.ok(how.reset && how.at - started < 1000, `reset after ${how.at - started} ms`);
    assert.equal(script.probes, 1);
    const next = await visit();
    const t2 = Date.now();
    broker.visitor(next.accepted, tunnel());
    const how2 = await closedHow(next.external);
    assert.ok(how2.reset && how2.at - t2 < 200, `refused at once (${how2.at - t2} ms) while suspect`);
    // A sign of life clears it: the next visitor waits for a channel again.
    script.alive = true;
    script.heard = Date.now();
    const later = await visit();
    broker.visitor(later.accepted, tunnel());
    assert.equal(broker.stats().waiting, 1);
  });

  test('an unanswered probe while the client was heard from otherwise (a data channel): nobody is refused', async (t) => {
    const { broker, script } = makeBroker(t, { freshMs: 10 });
    script.alive = false;
    script.heardDuringProbe = true;
    script.heard = Date.now() - 1000;
    const visit = await visitorFactory(t);
    const waiting = await visit();
    broker.visitor(waiting.accepted, tunnel());
    await until(() => script.probes >= 2, 2000, 'a second probe (the first counted as alive)');
    assert.equal(broker.stats().waiting, 1, 'the visitor still waits for its channel');
    const next = await visit();
    broker.visitor(next.accepted, tunnel());
    assert.equal(broker.stats().waiting, 2, 'a new visitor is not refused: the client is not suspect');
  });

  test('an assigned visitor whose channel stays silent is reset when the probe fails', async (t) => {
    const { broker, script } = makeBroker(t, { freshMs: 10 });
    const client = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    script.alive = false;
    script.heard = Date.now() - 1000;
    const visit = await visitorFactory(t);
    const { accepted, external } = await visit();
    const started = Date.now();
    broker.visitor(accepted, tunnel());
    assert.equal((await client.receive(2000)).type, 'IncomingConn');
    const how = await closedHow(external);
    assert.ok(how.reset && how.at - started < 1000, `reset after ${how.at - started} ms`);
  });

  test('NO_COMPRESS: a tunnel with compress off stores every frame of its connection', async (t) => {
    const { broker } = makeBroker(t);
    const { server, client } = await keyedChannel(t);
    assert.ok(broker.prove(server, '127.0.0.1'));
    client.send({ type: 'Heartbeat', reply: false, seq: 0 });
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    const visit = await visitorFactory(t);
    const { accepted } = await visit();
    broker.visitor(accepted, tunnel({ compress: false }));
    await client.receive(2000);
    assert.equal(server.encoder.compression, 'never');
  });

  test('target_unreachable on the channel resets the visitor and counts it', async (t) => {
    const { broker } = makeBroker(t);
    const client = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    const visit = await visitorFactory(t);
    const { accepted, external } = await visit();
    const counters = metrics.tunnel(4200, 'refusing');
    broker.visitor(accepted, tunnel({ counters, port: 4200 }));
    const inc = (await client.receive(2000)) as Extract<ServerMessage, { type: 'IncomingConn' }>;
    const started = Date.now();
    client.send({ type: 'Error', streamId: inc.connId, code: 'target_unreachable', message: 'ECONNREFUSED' });
    const how = await closedHow(external);
    assert.ok(how.reset && how.at - started < 500, `reset after ${how.at - started} ms`);
    assert.equal(counters.pairingFailures, 1);
  });

  test('close(): waiting refused, idle and unproven closed, relayed connections go on until they end', async (t) => {
    const { broker } = makeBroker(t);
    const busy = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'idle');
    const visit = await visitorFactory(t);
    const relayed = await visit();
    broker.visitor(relayed.accepted, tunnel());
    await busy.receive(2000);
    const idle = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 1, 2000, 'second idle');
    const proving = await keyedChannel(t);
    assert.ok(broker.prove(proving.server, '127.0.0.1'));
    const waiting = await visit();
    // The idle channel takes this visitor; a third one has to wait.
    broker.visitor(waiting.accepted, tunnel());
    await idle.receive(2000);
    const third = await visit();
    broker.visitor(third.accepted, tunnel());
    assert.equal(broker.stats().waiting, 1);
    let drained = false;
    broker.onDrained(() => {
      drained = true;
    });
    broker.close('session over');
    assert.ok((await closedHow(third.external)).reset);
    await new Promise<void>((r) => proving.server.onClose(() => r()));
    assert.equal(broker.stats().active, 2, 'both relayed connections go on');
    assert.equal(drained, false);
    busy.close();
    idle.close();
    await until(() => drained, 2000, 'drained once the relays ended');
  });

  test('revoke(ports) resets the relayed connections on those ports only', async (t) => {
    const { broker } = makeBroker(t);
    const c1 = await provenChannel(t, broker);
    const c2 = await provenChannel(t, broker);
    await until(() => broker.stats().idle === 2, 2000, 'idle');
    const visit = await visitorFactory(t);
    const onA = await visit();
    const onB = await visit();
    broker.visitor(onA.accepted, tunnel({ port: 5001, tunnelId: 1 }));
    broker.visitor(onB.accepted, tunnel({ port: 5002, tunnelId: 2 }));
    await Promise.all([c1.receive(2000), c2.receive(2000)]);
    assert.deepEqual(broker.activePorts().sort(), [5001, 5002]);
    broker.revoke('port no longer allowed', new Set([5001]));
    assert.ok((await closedHow(onA.external)).reset);
    assert.deepEqual(broker.activePorts(), [5002]);
    assert.equal(broker.closed, false);
  });
});
