import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { formatPublicKeyLine, generateIdentity, parseAllowList } from '../../src/identity/index.js';
import { FrameEncoder } from '../../src/protocol/frame-codec.js';
import {
  type ClientMessage,
  decodeServerMessage,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import { runClientHandshake, runDataClientHandshake } from '../../src/transport/handshake.js';
import { captureLog, dial, echoServer, freePort, readAll, startPair, tunnelsActive } from './harness.js';

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    s.on('close', () => resolve());
    s.on('error', () => {});
    s.resume();
  });
}

/** The tunnel still carries bytes: the server kept serving. */
async function stillServes(port: number): Promise<void> {
  const s = await dial(port, { allowHalfOpen: true });
  const got = readAll(s);
  s.end('still here');
  assert.equal((await got).toString(), 'still here');
}

test('garbage on the control port closes that socket only', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const cap = captureLog();
  const { client, server } = await startPair(t, {
    server: { log: cap.log },
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(client);
  // Each is refused for what it is, at once: not by a deadline that would close it anyway.
  const garbage: Array<[Buffer, RegExp]> = [
    [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /frame length \d+ exceeds the limit of 1024/],
    [Buffer.concat([Buffer.from([0x7f, 0, 0, 0]), randomBytes(4092)]), /exceeds the limit of 1024/],
    [Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), /frame length 4294967295 exceeds/],
    [Buffer.from([0, 0, 0, 6, 0x99, 0, 0, 0, 0, 0]), /unknown message type 0x99/],
  ];
  for (const [g, reason] of garbage) {
    const s = connect({ host: '127.0.0.1', port: server.address.port });
    await once(s, 'connect');
    const started = Date.now();
    s.write(g);
    await closed(s);
    const took = Date.now() - started;
    assert.ok(took < 1000, `closed after ${took} ms`);
    await cap.waitFor(
      (l) => l.msg === 'connection dropped before its hello' && reason.test(String(l.error)),
      1000,
    );
  }
  await stillServes(remotePort);
  assert.equal(client.state.snapshot().connection.kind, 'connected');
});

test('a half handshake times out and is closed; others still connect', async (t) => {
  const cap = captureLog();
  const { server, startClient, client } = await startPair(t, {
    server: { handshakeTimeoutMs: 300, log: cap.log },
  });
  // The pair's own client holds the key; the one started below must find it free.
  await client.close();
  const clientIdentity = generateIdentity('half');
  const s = connect({ host: '127.0.0.1', port: server.address.port });
  await once(s, 'connect');
  const conn = new FramedConnection<ServerMessage, ClientMessage>(s, decodeServerMessage);
  // Send a valid ClientHello, read the ServerHello, then say nothing more.
  const encoder = new FrameEncoder();
  const { ClientHandshake } = await import('../../src/protocol/handshake-machines.js');
  const hs = new ClientHandshake({ identity: clientIdentity, checkServerKey: () => {} });
  s.write(encoder.encodeToBuffer(hs.hello()));
  const sh = await conn.receive(2000);
  assert.equal(sh.type, 'ServerHello');
  const started = Date.now();
  await closed(s);
  const took = Date.now() - started;
  assert.ok(took < 2000, `closed after ${took} ms`);
  const why = await cap.waitFor((l) => l.msg === 'handshake timed out', 1000);
  assert.equal(why.what, 'the handshake');
  const other = startClient();
  await other.waitFor((x) => x.connection.kind === 'connected');
});

test('too many handshakes at once: the extra connections are refused, the server keeps serving', async (t) => {
  const cap = captureLog();
  const { server, startClient, client } = await startPair(t, {
    server: { maxUnauthenticated: 3, log: cap.log },
  });
  await client.close();
  const idle = await Promise.all(
    Array.from({ length: 3 }, async () => {
      const s = connect({ host: '127.0.0.1', port: server.address.port });
      await once(s, 'connect');
      s.on('error', () => {});
      return s;
    }),
  );
  const extra = connect({ host: '127.0.0.1', port: server.address.port });
  const started = Date.now();
  await closed(extra);
  assert.ok(Date.now() - started < 1000, `refused after ${Date.now() - started} ms`);
  const why = await cap.waitFor((l) => l.msg === 'connection refused: too many handshakes in progress', 1000);
  assert.equal(why.limit, '3 in total');
  for (const s of idle) s.destroy();
  await Promise.all(idle.map(closed));
  const c = startClient();
  await c.waitFor((x) => x.connection.kind === 'connected');
});

test('a stranger who learns a session id cannot get a visitor: only proven channels are assigned', async (t) => {
  const remotePort = await freePort();
  const serverIdentity = generateIdentity('server');
  const clientIdentity = generateIdentity('client');
  const { server, client } = await startPair(t, {
    server: {
      identity: serverIdentity,
      allowList: parseAllowList(formatPublicKeyLine(clientIdentity.publicRaw), 'test'),
    },
    client: { identity: clientIdentity },
  });
  await client.close();
  // A hand-driven client, so we choose when (and whether) to open a data channel.
  const ctl = connect({ host: '127.0.0.1', port: server.address.port, noDelay: true });
  await once(ctl, 'connect');
  const control = new FramedConnection<ServerMessage, ClientMessage>(ctl, decodeServerMessage);
  const hs = await runClientHandshake(control, { identity: clientIdentity, checkServerKey: () => {} });
  t.after(() => control.close());
  control.send({
    type: 'OpenTunnel',
    tunnelId: 1,
    remotePort,
    name: 'e',
    compress: true,
    maxConnections: 0,
    rateLimit: 0,
    permitFrom: [],
  });
  const status = await control.receive(2000);
  assert.equal(status.type === 'TunnelStatus' && status.state, 'active');
  const external = await dial(remotePort, { allowHalfOpen: true });
  external.write('hello');
  // No idle channel: the server asks for one.
  const wanted = await control.receive(2000);
  assert.deepEqual(wanted, { type: 'ChannelsWanted', count: 1 });

  // The stranger knows the session id (it travels in clear in DataHello).
  const attempts: Array<(s: Socket) => void> = [
    // garbage keyed as if it had guessed the keys
    (s) => s.write(new FrameEncoder().encodeToBuffer({ type: 'Heartbeat', reply: false, seq: 0 })),
    // a DataHello, then a proof under keys it had to guess
    (s) => {
      s.write(
        new FrameEncoder().encodeToBuffer({
          type: 'DataHello',
          version: PROTOCOL_VERSION,
          sessionId: hs.keys.sessionId,
          nonce: randomBytes(32),
        }),
      );
      s.once('data', () => {
        const forged = new FrameEncoder();
        forged.setKeys({ key: randomBytes(32), nonceBase: randomBytes(4) });
        s.write(forged.encodeToBuffer({ type: 'Heartbeat', reply: false, seq: 0 }));
      });
    },
  ];
  for (const attempt of attempts) {
    const s = connect({ host: '127.0.0.1', port: server.address.port });
    await once(s, 'connect');
    const started = Date.now();
    attempt(s);
    await closed(s);
    assert.ok(Date.now() - started < 1500, `the stranger was closed after ${Date.now() - started} ms`);
  }
  // A made-up session id is closed without a word.
  const fake = connect({ host: '127.0.0.1', port: server.address.port });
  await once(fake, 'connect');
  const fakeConn = new FramedConnection<ServerMessage, ClientMessage>(fake, decodeServerMessage);
  await assert.rejects(
    runDataClientHandshake(fakeConn, { sessionId: randomBytes(16), sessionSecret: randomBytes(32) }),
    (err: Error & { code?: string }) => err.code === 'ERR_CLOSED',
  );

  // The real client's proven channel gets the visitor: IncomingConn, then its bytes.
  const ds = connect({ host: '127.0.0.1', port: server.address.port, noDelay: true, allowHalfOpen: true });
  await once(ds, 'connect');
  const data = new FramedConnection<ServerMessage, ClientMessage>(ds, decodeServerMessage);
  await runDataClientHandshake(data, { sessionId: hs.keys.sessionId, sessionSecret: hs.keys.sessionSecret });
  data.send({ type: 'Heartbeat', reply: false, seq: 0 });
  const incoming = await data.receive(2000);
  assert.equal(incoming.type, 'IncomingConn');
  assert.ok(incoming.type === 'IncomingConn' && incoming.tunnelId === 1 && incoming.family === 4);
  assert.ok(incoming.type === 'IncomingConn' && incoming.srcPort === external.localPort);
  assert.ok(incoming.type === 'IncomingConn' && incoming.dstPort === remotePort);
  const first = await data.receive(2000);
  assert.equal(first.type === 'Data' && first.payload.toString(), 'hello');
  data.send({ type: 'Data', fin: true, payload: Buffer.from('world') });
  assert.equal((await readAll(external)).toString(), 'world');
  data.close();
});
