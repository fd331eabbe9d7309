/**
 * The control and data-channel handshakes as the transport runs them (FramedConnection over a stream),
 * over an in-memory duplex that delivers at most 7 bytes per event-loop turn with a tiny buffer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { identityFromSeed } from '../../src/identity/index.js';
import { AuthRejectedError, ProtocolError } from '../../src/protocol/errors.js';
import { type DirectionKeys, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { ClientHandshake, type HandshakeIdentity, ServerHandshake } from '../../src/protocol/handshake.js';
import {
  type ClientHello,
  type ClientMessage,
  decodeClientMessage,
  decodeServerMessage,
  type Message,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import {
  type ClientConnection,
  failAndClose,
  runClientHandshake,
  runDataClientHandshake,
  runDataServerHandshake,
  runServerHandshake,
  type ServerConnection,
} from '../../src/transport/handshake.js';
import { duplexPair, flipByteAt, type PipeEnd } from './duplex-pair.js';
import { assertCode, rejectsCode } from './fixtures.js';

const T = { timeout: 10_000 };
const WAIT = 5_000;

function newIdentity(): HandshakeIdentity {
  return identityFromSeed(randomBytes(32));
}

function pin(expected: Buffer): (raw: Buffer) => void {
  return (raw) => {
    if (!raw.equals(expected))
      throw new ProtocolError('ERR_SERVER_KEY_MISMATCH', 'server key is not the pinned one');
  };
}

/** A client and a server FramedConnection over a fresh duplex pair, closed after the test. */
function pair(t: TestContext): {
  a: PipeEnd;
  b: PipeEnd;
  client: ClientConnection;
  server: ServerConnection;
  close(): void;
} {
  const [a, b] = duplexPair();
  const client: ClientConnection = new FramedConnection(a, decodeServerMessage);
  const server: ServerConnection = new FramedConnection(b, decodeClientMessage);
  const close = () => {
    client.close();
    server.close();
  };
  t.after(close);
  return { a, b, client, server, close };
}

/** A client handshake under way against a raw peer, which has read its ClientHello (109 bytes). */
async function clientAfterHello(t: TestContext) {
  const p = pair(t);
  const client = runClientHandshake(p.client, { identity: newIdentity(), checkServerKey: () => {} });
  await within(readAtLeast(p.b, 109));
  return { p, client };
}

/** Rejects if `p` has not settled within `ms`: every wait in these tests is bounded. */
async function within<V>(p: Promise<V>, ms = WAIT, what = 'operation'): Promise<V> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Everything a raw stream end receives until the peer ends it. */
function readAll(end: PipeEnd): Promise<Buffer> {
  const chunks: Buffer[] = [];
  end.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    end.once('end', () => resolve(Buffer.concat(chunks)));
    end.once('error', reject);
  });
}

/** Resolves once a raw stream end has received at least `n` bytes. */
function readAtLeast(end: PipeEnd, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve) => {
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        end.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    end.on('data', onData);
  });
}

/** Decodes every frame of `bytes` (cleartext, or keyed from the first frame on). */
function decodeFrames<M extends Message>(decode: (p: Buffer) => M, bytes: Buffer): M[] {
  const d = new FrameDecoder(decode);
  d.push(bytes);
  const out: M[] = [];
  for (let m = d.next(); m !== undefined; m = d.next()) out.push(m);
  return out;
}

/** The server's side as server.ts runs it: read the hello, then the handshake. */
async function serve(server: ServerConnection, identity: HandshakeIdentity, deadline = WAIT) {
  const hello = await server.receive(deadline);
  assert.equal(hello.type, 'ClientHello');
  return runServerHandshake(server, hello as ClientHello, { identity, timeoutMs: deadline });
}

describe('control handshake over a 7-byte duplex', () => {
  test('success: both sides derive the same keys, then keyed Data passes both ways', T, async (t) => {
    const p = pair(t);
    const cid = newIdentity();
    const sid = newIdentity();
    const [c, s] = await within(
      Promise.all([
        runClientHandshake(p.client, {
          identity: cid,
          checkServerKey: pin(sid.publicRaw),
          timeoutMs: WAIT,
        }),
        serve(p.server, sid).then((pending) => {
          pending.accept({
            heartbeatMs: 1234,
            allowedPorts: [{ low: 2000, high: 3000 }],
            maxConnections: 5,
            rateLimit: 0,
          });
          return pending;
        }),
      ]),
    );
    assert.deepEqual(c.authOk, {
      type: 'AuthOk',
      heartbeatMs: 1234,
      allowedPorts: [{ low: 2000, high: 3000 }],
      maxConnections: 5,
      rateLimit: 0,
    });
    assert.ok(c.serverKey.equals(sid.publicRaw));
    assert.ok(s.clientKey.equals(cid.publicRaw));
    assert.deepEqual(c.keys.send, s.keys.receive);
    assert.deepEqual(c.keys.receive, s.keys.send);
    assert.ok(c.keys.sessionId.equals(s.keys.sessionId));
    assert.ok(c.keys.sessionSecret.equals(s.keys.sessionSecret));
    assert.ok(!c.keys.send.key.equals(c.keys.receive.key), 'one key per direction');

    const up: ClientMessage = { type: 'Data', fin: false, payload: Buffer.from('x'.repeat(3000)) };
    const down: ServerMessage = { type: 'Data', fin: true, payload: randomBytes(2000) };
    p.client.send(up);
    p.server.send(down);
    assert.deepEqual(await within(p.server.receive(WAIT)), up);
    assert.deepEqual(await within(p.client.receive(WAIT)), down);

    // The duplex really did cut the traffic into pieces of at most 7 bytes.
    assert.ok(p.b.received.length > 50);
    assert.ok(p.b.received.every((piece) => piece.length <= 7));
    // Only the ClientHello went in clear: the repeated 'x' never appears on the wire.
    assert.ok(!p.b.receivedBytes().includes(Buffer.from('xxxxxxxx')));
  });

  test(
    'the server refuses an unknown client key: the client gets AuthRejectedError unknown_key',
    T,
    async (t) => {
      const p = pair(t);
      const sid = newIdentity();
      const client = runClientHandshake(p.client, {
        identity: newIdentity(),
        checkServerKey: pin(sid.publicRaw),
      });
      const pending = await within(serve(p.server, sid));
      pending.reject('unknown_key', 'key SHA256:... is not in the allow-list');
      const err = await within(rejectsCode(client, 'ERR_AUTH_FAILED'));
      assert.ok(err instanceof AuthRejectedError);
      assert.equal(err.reason, 'unknown_key');
      assert.match(err.message, /unknown_key.*allow-list/);
    },
  );

  test('a client that pins another server key refuses it (ERR_SERVER_KEY_MISMATCH)', T, async (t) => {
    const p = pair(t);
    const server = serve(p.server, newIdentity());
    const client = runClientHandshake(p.client, {
      identity: newIdentity(),
      checkServerKey: pin(randomBytes(32)),
    });
    await within(rejectsCode(client, 'ERR_SERVER_KEY_MISMATCH'));
    // The client hangs up without ClientAuth; the server's wait ends with the connection.
    p.client.close();
    await within(rejectsCode(server, 'ERR_CLOSED'));
  });

  // Offsets in the server-to-client stream: 4-byte length, then the ServerHello plaintext.
  const tamperCases: Array<[string, number]> = [
    ['identity key', 4 + 9],
    ['ephemeral key', 4 + 41],
    ['nonce', 4 + 73],
    ['first signature byte', 4 + 105],
    ['last signature byte', 4 + 168],
  ];
  for (const [what, offset] of tamperCases) {
    test(`a ServerHello with a flipped bit in its ${what} is refused`, T, async (t) => {
      const p = pair(t);
      const sid = newIdentity();
      p.a.tamper = flipByteAt(offset);
      const server = serve(p.server, sid);
      const client = runClientHandshake(p.client, {
        identity: newIdentity(),
        checkServerKey: pin(sid.publicRaw),
      });
      await within(rejectsCode(client, 'ERR_BAD_SIGNATURE'));
      p.client.close();
      await within(rejectsCode(server, 'ERR_CLOSED'));
    });
  }

  test(
    'any other cleartext AuthFail is not believed: ERR_UNEXPECTED_MESSAGE, and its text is not shown',
    T,
    async (t) => {
      for (const reason of ['unknown_key', 'busy', 'in_use', 'revoked'] as const) {
        const { p, client } = await clientAfterHello(t);
        p.b.write(
          new FrameEncoder().encodeToBuffer({
            type: 'AuthFail',
            reason,
            version: PROTOCOL_VERSION,
            message: 'evil \u001b]0;owned\u0007 text',
          }),
        );
        const err = await within(rejectsCode(client, 'ERR_UNEXPECTED_MESSAGE'));
        assert.ok(!(err instanceof AuthRejectedError), reason);
        assert.match(err.message, new RegExp(`unauthenticated refusal \\(${reason}\\)`));
        assert.doesNotMatch(err.message, /evil|owned|\u001b|\u0007/);
      }
    },
  );

  test('a recorded ClientHello + ClientAuth replayed into a new server handshake fails', T, async (t) => {
    const sid = newIdentity();
    const cid = newIdentity();
    const first = pair(t);
    let recorded: Buffer;
    let serverReceive: DirectionKeys;
    try {
      const [, s] = await within(
        Promise.all([
          runClientHandshake(first.client, { identity: cid, checkServerKey: pin(sid.publicRaw) }),
          serve(first.server, sid).then((pending) => {
            pending.accept({ heartbeatMs: 1000, allowedPorts: [], maxConnections: 0, rateLimit: 0 });
            return pending;
          }),
        ]),
      );
      recorded = first.b.receivedBytes();
      serverReceive = s.keys.receive;
    } finally {
      first.close();
    }

    // The attacker writes the recording into a fresh connection.
    const second = pair(t);
    try {
      second.a.write(recorded);
      const err = await within(rejectsCode(serve(second.server, sid), 'ERR_DECRYPT'));
      assert.match(err.message, /authentication/);
    } finally {
      second.close();
    }

    // And were it decrypted, its signature would not verify over the new transcript.
    const hello = decodeFrames(decodeClientMessage, recorded.subarray(0, 109))[0] as ClientHello;
    const authDecoder = new FrameDecoder(decodeClientMessage);
    authDecoder.setKeys(serverReceive);
    authDecoder.push(recorded.subarray(109));
    const auth = authDecoder.next();
    assert.equal(auth?.type, 'ClientAuth');
    const fresh = new ServerHandshake({ identity: sid });
    fresh.onClientHello(hello);
    assert.throws(
      () => fresh.onClientAuth(auth as Extract<ClientMessage, { type: 'ClientAuth' }>),
      (e: unknown) => assertCode(e, 'ERR_BAD_SIGNATURE') !== undefined,
    );
  });

  test(
    'a ClientHello of version 1: the server names both versions and answers a cleartext AuthFail',
    T,
    async (t) => {
      const p = pair(t);
      const hello = Buffer.concat([
        Buffer.from('00000069' + '010000000000' + '0001' + '01', 'hex'),
        randomBytes(96),
      ]);
      const wire = readAll(p.a);
      p.a.write(hello);
      const err = await within(rejectsCode(p.server.receive(WAIT), 'ERR_VERSION_MISMATCH'));
      assert.match(err.message, /version 1\b/);
      assert.match(err.message, new RegExp(`speaks ${PROTOCOL_VERSION}\\b`));
      // What server.ts does with it: a cleartext AuthFail, then the end of the stream.
      failAndClose(p.server, 'version_mismatch', err.message);
      const answer = decodeFrames(decodeServerMessage, await within(wire));
      assert.equal(answer.length, 1);
      assert.deepEqual(answer[0], {
        type: 'AuthFail',
        reason: 'version_mismatch',
        version: PROTOCOL_VERSION,
        message: err.message,
      });
    },
  );

  test(
    'a cleartext AuthFail version_mismatch gives the client an AuthRejectedError naming both versions, not the peer text',
    T,
    async (t) => {
      const { p, client } = await clientAfterHello(t);
      p.b.write(
        new FrameEncoder().encodeToBuffer({
          type: 'AuthFail',
          reason: 'version_mismatch',
          version: 1,
          message: 'PEERTEXT \u001b[31mnow',
        }),
      );
      const err = await within(rejectsCode(client, 'ERR_AUTH_FAILED'));
      assert.ok(err instanceof AuthRejectedError);
      assert.equal(err.reason, 'version_mismatch');
      assert.equal(err.serverVersion, 1);
      assert.match(
        err.message,
        new RegExp(`server speaks protocol version 1, this client speaks ${PROTOCOL_VERSION}`),
      );
      assert.doesNotMatch(err.message, /PEERTEXT|\u001b/);
    },
  );

  test('a ServerHello of version 3 is ERR_VERSION_MISMATCH on the client', T, async (t) => {
    const { p, client } = await clientAfterHello(t);
    const sh = Buffer.concat([
      Buffer.from('000000a9' + '020000000000' + '0003' + '02', 'hex'),
      randomBytes(160),
    ]);
    p.b.write(sh);
    const err = await within(rejectsCode(client, 'ERR_VERSION_MISMATCH'));
    assert.match(err.message, /version 3\b.*\b2\b/);
  });

  test('a silent server: the client times out with ERR_HANDSHAKE_TIMEOUT', T, async (t) => {
    const p = pair(t);
    const started = Date.now();
    await within(
      rejectsCode(
        runClientHandshake(p.client, { identity: newIdentity(), checkServerKey: () => {}, timeoutMs: 100 }),
        'ERR_HANDSHAKE_TIMEOUT',
      ),
    );
    assert.ok(Date.now() - started >= 90, 'not before the deadline');
  });

  test(
    'a client that never sends ClientAuth: the server times out with ERR_HANDSHAKE_TIMEOUT',
    T,
    async (t) => {
      const p = pair(t);
      const hs = new ClientHandshake({ identity: newIdentity(), checkServerKey: () => {} });
      p.a.write(new FrameEncoder().encodeToBuffer(hs.hello()));
      await within(rejectsCode(serve(p.server, newIdentity(), 150), 'ERR_HANDSHAKE_TIMEOUT'));
    },
  );

  test('a low-order X25519 point is refused (ERR_WEAK_KEY)', () => {
    const hs = new ServerHandshake({ identity: newIdentity() });
    for (const point of [Buffer.alloc(32), Buffer.concat([Buffer.of(1), Buffer.alloc(31)])]) {
      assert.throws(
        () =>
          hs.onClientHello({
            type: 'ClientHello',
            version: PROTOCOL_VERSION,
            identityKey: newIdentity().publicRaw,
            ephemeralKey: point,
            nonce: randomBytes(32),
          }),
        (e: unknown) => assertCode(e, 'ERR_WEAK_KEY') !== undefined,
      );
    }
  });
});

describe('data-channel handshake over a 7-byte duplex', () => {
  const sessionId = randomBytes(16);
  const sessionSecret = randomBytes(32);

  /** The server's side as server.ts runs it, up to the first keyed frame. */
  async function serveData(server: ServerConnection, secret: Buffer) {
    const hello = await server.receive(WAIT);
    assert.equal(hello.type, 'DataHello');
    assert.ok(hello.type === 'DataHello' && hello.sessionId.equals(sessionId));
    runDataServerHandshake(server, hello as Extract<ClientMessage, { type: 'DataHello' }>, secret);
    return server.receive(WAIT);
  }

  const incoming: ServerMessage = {
    type: 'IncomingConn',
    connId: 42,
    tunnelId: 1,
    family: 4,
    srcAddr: Buffer.from([203, 0, 113, 9]),
    srcPort: 51000,
    dstAddr: Buffer.from([198, 51, 100, 1]),
    dstPort: 8080,
  };

  test(
    'success: the channel proves itself with a Heartbeat, is assigned (IncomingConn), then Data with FIN both ways',
    T,
    async (t) => {
      const p = pair(t);
      const first = serveData(p.server, sessionSecret);
      const keys = await within(
        runDataClientHandshake(p.client, { sessionId, sessionSecret, timeoutMs: WAIT }),
      );
      assert.equal(keys.send.key.length, 32);
      p.client.send({ type: 'Heartbeat', reply: false, seq: 0 });
      assert.deepEqual(await within(first), { type: 'Heartbeat', reply: false, seq: 0 });
      // The server's one round trip: the assignment and the visitor's first bytes together.
      const up: ServerMessage = { type: 'Data', fin: true, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') };
      p.server.send(incoming);
      p.server.send(up);
      assert.deepEqual(await within(p.client.receive(WAIT)), incoming);
      assert.deepEqual(await within(p.client.receive(WAIT)), up);
      const down: ClientMessage = {
        type: 'Data',
        fin: true,
        payload: Buffer.from('HTTP/1.0 200 OK\r\n\r\n'),
      };
      p.client.send(down);
      assert.deepEqual(await within(p.server.receive(WAIT)), down);
    },
  );

  test('a wrong session secret fails at the first keyed frame (ERR_DECRYPT)', T, async (t) => {
    const p = pair(t);
    const first = serveData(p.server, sessionSecret);
    // The client cannot tell: its handshake completes.
    await within(runDataClientHandshake(p.client, { sessionId, sessionSecret: randomBytes(32) }));
    p.client.send({ type: 'Heartbeat', reply: false, seq: 0 });
    await within(rejectsCode(first, 'ERR_DECRYPT'));
  });

  test('a recorded DataHello + proof replayed to the server fails (ERR_DECRYPT)', T, async (t) => {
    const first = pair(t);
    let recorded: Buffer;
    try {
      const proof = serveData(first.server, sessionSecret);
      await within(runDataClientHandshake(first.client, { sessionId, sessionSecret }));
      first.client.send({ type: 'Heartbeat', reply: false, seq: 0 });
      assert.deepEqual(await within(proof), { type: 'Heartbeat', reply: false, seq: 0 });
      recorded = first.b.receivedBytes();
    } finally {
      first.close();
    }
    const second = pair(t);
    try {
      second.a.write(recorded);
      await within(rejectsCode(serveData(second.server, sessionSecret), 'ERR_DECRYPT'));
    } finally {
      second.close();
    }
  });

  test(
    'a DataHello for no live session is closed without a word; a cleartext AuthFail is not believed',
    T,
    async (t) => {
      const p = pair(t);
      const client = runDataClientHandshake(p.client, { sessionId, sessionSecret });
      const hello = await within(p.server.receive(WAIT));
      assert.equal(hello.type, 'DataHello');
      p.server.close();
      await within(rejectsCode(client, 'ERR_CLOSED'));
      const q = pair(t);
      try {
        const client = runDataClientHandshake(q.client, { sessionId, sessionSecret });
        await within(q.server.receive(WAIT));
        failAndClose(q.server, 'unknown_session', 'no such session');
        const err = await within(rejectsCode(client, 'ERR_UNEXPECTED_MESSAGE'));
        assert.ok(!(err instanceof AuthRejectedError));
      } finally {
        q.close();
      }
    },
  );
});
