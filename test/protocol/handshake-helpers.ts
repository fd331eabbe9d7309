/** What the handshake tests share: connection pairs over the 7-byte duplex, bounded waits, readers. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { identityFromSeed } from '../../src/identity/index.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { FrameDecoder } from '../../src/protocol/frame-codec.js';
import type { HandshakeIdentity } from '../../src/protocol/handshake-machines.js';
import {
  type ClientHello,
  decodeClientMessage,
  decodeServerMessage,
  type Message,
} from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import {
  type ClientConnection,
  runClientHandshake,
  runServerHandshake,
  type ServerConnection,
} from '../../src/transport/handshake.js';
import { duplexPair, type PipeEnd } from './duplex-pair.js';

/** Each handshake test's time limit. */
export const T = { timeout: 10_000 };
/** The longest one wait inside a test may take. */
export const WAIT = 5_000;

export function newIdentity(): HandshakeIdentity {
  return identityFromSeed(randomBytes(32));
}

export function pin(expected: Buffer): (raw: Buffer) => void {
  return (raw) => {
    if (!raw.equals(expected))
      throw new ProtocolError('ERR_SERVER_KEY_MISMATCH', 'server key is not the pinned one');
  };
}

/** A client and a server FramedConnection over a fresh duplex pair, closed after the test. */
export function pair(t: TestContext): {
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
export async function clientAfterHello(t: TestContext) {
  const p = pair(t);
  const client = runClientHandshake(p.client, { identity: newIdentity(), checkServerKey: () => {} });
  await within(readAtLeast(p.b, 109));
  return { p, client };
}

/** Rejects if `p` has not settled within `ms`: every wait in these tests is bounded. */
export async function within<V>(p: Promise<V>, ms = WAIT, what = 'operation'): Promise<V> {
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
export function readAll(end: PipeEnd): Promise<Buffer> {
  const chunks: Buffer[] = [];
  end.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    end.once('end', () => resolve(Buffer.concat(chunks)));
    end.once('error', reject);
  });
}

/** Resolves once a raw stream end has received at least `n` bytes. */
export function readAtLeast(end: PipeEnd, n: number): Promise<Buffer> {
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
export function decodeFrames<M extends Message>(decode: (p: Buffer) => M, bytes: Buffer): M[] {
  const d = new FrameDecoder(decode);
  d.push(bytes);
  const out: M[] = [];
  for (let m = d.next(); m !== undefined; m = d.next()) out.push(m);
  return out;
}

/** The server's side as server.ts runs it: read the hello, then the handshake. */
export async function serve(server: ServerConnection, identity: HandshakeIdentity, deadline = WAIT) {
  const hello = await server.receive(deadline);
  assert.equal(hello.type, 'ClientHello');
  return runServerHandshake(server, hello as ClientHello, { identity, timeoutMs: deadline });
}
