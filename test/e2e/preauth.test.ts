/**
 * Strangers before authentication (issue 9): what one source address can hold, how long a first frame
 * may take, a stream that ends inside a frame, replayed DataHellos, unauthenticated refusals, and a
 * data channel that stops in the middle of a frame. Each test asserts the reason (from the server's
 * log, or what the client shows) and a bound on the time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { FrameEncoder } from '../../src/protocol/frame-codec.js';
import { ClientHandshake } from '../../src/protocol/handshake-machines.js';
import {
  type ClientMessage,
  decodeServerMessage,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import { runClientHandshake, runDataClientHandshake } from '../../src/transport/handshake.js';
import { captureLog, dial, echoServer, freePort, readAll, startPair, tunnelsActive } from './harness.js';

/** A connection to the server from another loopback address (a second machine, for the server). */
function fromStranger(port: number): Socket {
  const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
  s.on('error', () => {});
  return s;
}

/** Keeps `n` connections from 127.0.0.2 open (re-opening each one the server closes) until the test ends. */
function holdConnections(t: TestContext, port: number, n: number, onConnect: (s: Socket) => void = () => {}) {
  let stopped = false;
  const live = new Set<Socket>();
  const open = () => {
    if (stopped) return;
    const s = fromStranger(port);
    live.add(s);
    s.on('connect', () => onConnect(s));
    s.on('close', () => {
      live.delete(s);
      // Come back a little later, as an attacker would, without spinning the test's own CPU.
      setTimeout(open, 100);
    });
  };
  for (let i = 0; i < n; i++) open();
  const stop = () => {
    stopped = true;
    for (const s of live) s.destroy();
  };
  t.after(stop);
  return { live, stop };
}

/** Opens `n` visitors to `port` at once; each sends its own line and reads back what the echo returns. */
function echoEach(port: number, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const s = await dial(port, { allowHalfOpen: true });
      const got = readAll(s);
      s.end(`connection ${i}`);
      return (await got).toString();
    }),
  );
}

function expectedEchoes(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `connection ${i}`);
}

function closed(s: Socket): Promise<number> {
  return new Promise((resolve) => {
    s.resume();
    if (s.destroyed) resolve(Date.now());
    else s.on('close', () => resolve(Date.now()));
  });
}

test('500 silent connections from another address do not lock the client out: it connects within 2 s', async (t) => {
  const cap = captureLog();
  const { server, client, startClient } = await startPair(t, { server: { log: cap.log } });
  await client.close();
  const attack = holdConnections(t, server.address.port, 500);
  await cap.waitFor(
    (l) => l.msg === 'connection refused: too many handshakes in progress' && l.limit === '8 per source',
  );
  const started = Date.now();
  const c = startClient();
  await c.waitFor((s) => s.connection.kind === 'connected', 2000);
  const took = Date.now() - started;
  assert.ok(took < 2000, `connected after ${took} ms`);
  assert.ok(attack.live.size > 0, 'the attack was still going on');
});

test('a first frame trickling in one byte a second is closed at its 2.5 s deadline', async (t) => {
  const cap = captureLog();
  const { server } = await startPair(t, { server: { log: cap.log } });
  const hello = new FrameEncoder().encodeToBuffer(
    new ClientHandshake({
      identity: (await import('../../src/identity/index.js')).generateIdentity('slow'),
      checkServerKey: () => {},
    }).hello(),
  );
  const s = fromStranger(server.address.port);
  await once(s, 'connect');
  const started = Date.now();
  let i = 0;
  const drip = setInterval(() => {
    if (!s.destroyed && i < hello.length) s.write(hello.subarray(i, ++i));
  }, 1000);
  t.after(() => clearInterval(drip));
  const at = await closed(s);
  const took = at - started;
  assert.ok(took >= 2300 && took < 4000, `closed after ${took} ms`);
  const line = await cap.waitFor((l) => l.msg === 'handshake timed out');
  assert.equal(line.what, 'the first frame');
});

test('a stream that ends inside a frame (FIN or reset) is closed at once and frees its slot', async (t) => {
  const cap = captureLog();
  const { server } = await startPair(t, { server: { log: cap.log } });
  const partial = Buffer.concat([Buffer.from('00000069010000000000', 'hex'), randomBytes(20)]);
  for (let round = 0; round < 2; round++) {
    // 8 at a time is the per-source cap: the second round only gets in if the first freed its slots.
    const conns = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const s = fromStranger(server.address.port);
        await once(s, 'connect');
        return s;
      }),
    );
    const started = Date.now();
    conns.forEach((s, i) => {
      s.write(partial);
      if (i % 2 === 0) s.end();
      else setTimeout(() => s.resetAndDestroy(), 20);
    });
    const ends = await Promise.all(conns.map(closed));
    const slowest = Math.max(...ends) - started;
    assert.ok(slowest < 1000, `round ${round}: the last one closed after ${slowest} ms`);
  }
  await cap.waitFor((l) => /middle of a frame/.test(String(l.error)));
  assert.equal(
    cap.lines.filter((l) => l.msg === 'connection refused: too many handshakes in progress').length,
    0,
    'no connection of the second round was refused: the first round freed its slots at once',
  );
});

test('replayed DataHellos from another address do not keep the client from serving 60 new connections', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const cap = captureLog();
  const pair = await startPair(t, {
    server: { log: cap.log },
    client: { dataChannelPool: 0 },
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(pair.client);
  const sessionId = pair.server.sessions.current!.sessionId;
  const replay = new FrameEncoder().encodeToBuffer({
    type: 'DataHello',
    version: PROTOCOL_VERSION,
    sessionId,
    nonce: randomBytes(32),
  });
  holdConnections(t, pair.server.address.port, 200, (s) => s.write(replay));
  await cap.waitFor(
    (l) => l.msg === 'data channel refused: too many unproven channels' || l.limit === '8 per source',
  );
  const started = Date.now();
  assert.deepEqual(await echoEach(remotePort, 60), expectedEchoes(60));
  const took = Date.now() - started;
  assert.ok(took < 10_000, `60 connections took ${took} ms`);
});

test("the live client's own burst of data channels is not refused by the per-source cap for strangers", async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const cap = captureLog();
  // No channels opened ahead: 100 visitors at once make the server ask for dozens of channels, which
  // the client dials at once from its own address. With the strangers' cap at 1 (8 by default, which a
  // busy server's backlog of the client's handshakes also passes), any two at once would be refused.
  const pair = await startPair(t, {
    server: { log: cap.log, maxUnauthenticatedPerSource: 1 },
    client: { dataChannelPool: 0 },
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(pair.client);
  assert.deepEqual(await echoEach(remotePort, 100), expectedEchoes(100));
  const refused = cap.lines.filter((l) => l.msg === 'connection refused: too many handshakes in progress');
  assert.deepEqual(refused, [], "none of the client's channels was refused");
  // A stranger from another address still gets only its 1.
  const attack = holdConnections(t, pair.server.address.port, 20);
  await cap.waitFor(
    (l) => l.msg === 'connection refused: too many handshakes in progress' && l.limit === '1 per source',
  );
  attack.stop();
});

test('an unauthenticated refusal is not believed and its text never shown; a version mismatch is shown in our words', async (t) => {
  const evil = 'EVIL \u001b]0;owned\u0007 text';
  const answers: Array<ServerMessage> = [
    { type: 'AuthFail', reason: 'unknown_key', version: PROTOCOL_VERSION, message: evil },
    { type: 'AuthFail', reason: 'version_mismatch', version: 7, message: evil },
  ];
  let next = 0;
  const fake = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(new FrameEncoder().encodeToBuffer(answers[Math.min(next++, 1)]!)));
  });
  fake.listen({ host: '127.0.0.1', port: 0 });
  await once(fake, 'listening');
  t.after(() => fake.close());
  const { port } = fake.address() as { port: number };
  const { startClient } = await import('../../src/client/index.js');
  const { generateIdentity } = await import('../../src/identity/index.js');
  const client = startClient({
    host: '127.0.0.1',
    port,
    identity: generateIdentity('c'),
    reconnectMinMs: 50,
    reconnectMaxMs: 100,
  });
  t.after(() => client.close());
  const first = await client.waitFor((s) => s.connection.kind === 'reconnecting', 3000);
  assert.equal(first.connection.kind, 'reconnecting');
  assert.match(
    first.connection.kind === 'reconnecting' ? first.connection.lastError : '',
    /unauthenticated refusal \(unknown_key\)/,
  );
  const second = await client.waitFor((s) => s.connection.kind === 'rejected', 3000);
  assert.equal(second.connection.kind === 'rejected' && second.connection.reason, 'version_mismatch');
  assert.match(
    second.connection.kind === 'rejected' ? second.connection.message : '',
    new RegExp(`server speaks protocol version 7, this client speaks ${PROTOCOL_VERSION}`),
  );
  const everything = JSON.stringify(client.state.snapshot());
  assert.doesNotMatch(everything, /EVIL|owned|\\u001b|\\u0007/);
});

/** A hand-driven client with one tunnel, a visitor, and a proven data channel assigned to it. */
async function assignedChannel(t: TestContext, server: { partialFrameTimeoutMs?: number } = {}) {
  const { generateIdentity, formatPublicKeyLine, parseAllowList } = await import(
    '../../src/identity/index.js'
  );
  const id = generateIdentity('hand');
  const remotePort = await freePort();
  const pair = await startPair(t, {
    server: { allowList: parseAllowList(formatPublicKeyLine(id.publicRaw), 'test'), ...server },
    client: { identity: id },
  });
  await pair.client.close();
  const ctl = connect({ host: '127.0.0.1', port: pair.server.address.port, noDelay: true });
  await once(ctl, 'connect');
  const control = new FramedConnection<ServerMessage, ClientMessage>(ctl, decodeServerMessage);
  t.after(() => control.close());
  const hs = await runClientHandshake(control, { identity: id, checkServerKey: () => {} });
  control.send({
    type: 'OpenTunnel',
    tunnelId: 1,
    remotePort,
    name: 'h',
    compress: true,
    maxConnections: 0,
    rateLimit: 0,
    permitFrom: [],
  });
  assert.equal((await control.receive(2000)).type, 'TunnelStatus');
  const visitor = await dial(remotePort, { allowHalfOpen: true });
  visitor.on('error', () => {});
  visitor.write('hi');
  assert.equal((await control.receive(2000)).type, 'ChannelsWanted');
  const ds = connect({
    host: '127.0.0.1',
    port: pair.server.address.port,
    noDelay: true,
    allowHalfOpen: true,
  });
  await once(ds, 'connect');
  const data = new FramedConnection<ServerMessage, ClientMessage>(ds, decodeServerMessage);
  t.after(() => data.close());
  await runDataClientHandshake(data, { sessionId: hs.keys.sessionId, sessionSecret: hs.keys.sessionSecret });
  data.send({ type: 'Heartbeat', reply: false, seq: 0 });
  assert.equal((await data.receive(2000)).type, 'IncomingConn');
  assert.equal((await data.receive(2000)).type, 'Data');
  // Half of a keyed frame, as the next frame would be.
  const frame = data.encoder.encodeToBuffer({ type: 'Data', fin: false, payload: randomBytes(100) });
  return { visitor, ds, half: frame.subarray(0, 40) };
}

function resetWithin(s: Socket): Promise<{ at: number; reset: boolean }> {
  return new Promise((resolve) => {
    let reset = false;
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') reset = true;
    });
    s.resume();
    s.on('close', () => resolve({ at: Date.now(), reset }));
  });
}

test('a data channel that sends half a frame and then FIN is closed at once; the visitor is reset', async (t) => {
  const { visitor, ds, half } = await assignedChannel(t);
  const gone = resetWithin(visitor);
  const started = Date.now();
  ds.write(half);
  ds.end();
  const { at, reset } = await gone;
  assert.ok(reset, 'the visitor was reset, not ended');
  assert.ok(at - started < 1000, `after ${at - started} ms`);
});

test('a data channel silent in the middle of a frame is closed after the partial-frame timeout', async (t) => {
  const { visitor, ds, half } = await assignedChannel(t, { partialFrameTimeoutMs: 300 });
  const gone = resetWithin(visitor);
  const started = Date.now();
  ds.write(half);
  const { at, reset } = await gone;
  assert.ok(reset, 'the visitor was reset');
  const took = at - started;
  assert.ok(took >= 250 && took < 2000, `after ${took} ms with a 300 ms timeout`);
});
