/**
 * The data-channel handshake as the transport runs it (FramedConnection over a stream), over an
 * in-memory duplex that delivers at most 7 bytes per event-loop turn with a tiny buffer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { AuthRejectedError } from '../../src/protocol/errors.js';
import type { ClientMessage, IncomingConn, ServerMessage } from '../../src/protocol/messages.js';
import {
  failAndClose,
  runDataClientHandshake,
  runDataServerHandshake,
  type ServerConnection,
} from '../../src/transport/handshake.js';
import { rejectsCode, sampleMessages } from './fixtures.js';
import { pair, T, WAIT, within } from './handshake-helpers.js';

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

  /** The fixtures' IPv4 visitor. */
  const incoming = sampleMessages().find((m): m is IncomingConn => m.type === 'IncomingConn')!;

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
