/**
 * The control handshake as the transport runs it (FramedConnection over a stream), over an in-memory
 * duplex that delivers at most 7 bytes per event-loop turn with a tiny buffer. The data channel's is
 * data-handshake.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { AuthRejectedError } from '../../src/protocol/errors.js';
import { type DirectionKeys, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { ClientHandshake, ServerHandshake } from '../../src/protocol/handshake-machines.js';
import {
  type ClientHello,
  type ClientMessage,
  decodeClientMessage,
  decodeServerMessage,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { failAndClose, runClientHandshake } from '../../src/transport/handshake.js';
import { flipByteAt } from './duplex-pair.js';
import { assertCode, rejectsCode } from './fixtures.js';
import {
  clientAfterHello,
  decodeFrames,
  newIdentity,
  pair,
  pin,
  readAll,
  serve,
  T,
  WAIT,
  within,
} from './handshake-helpers.js';

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
