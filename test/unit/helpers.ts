/** Real loopback sockets and keyed channels for the unit tests of the server and client modules. */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { decodeClientMessage, decodeServerMessage } from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import type { ClientConnection, ServerConnection } from '../../src/transport/handshake.js';

/** A listener on 127.0.0.1 port 0 that hands over its sockets; closed after the test. */
export async function loopbackListener(
  t: TestContext,
  opts: { pauseOnConnect?: boolean } = {},
): Promise<{ server: Server; port: number; next(): Promise<Socket> }> {
  const waiting: Array<(s: Socket) => void> = [];
  const queued: Socket[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: opts.pauseOnConnect ?? false }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const w = waiting.shift();
    if (w) w(s);
    else queued.push(s);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    next: () => {
      const s = queued.shift();
      return s ? Promise.resolve(s) : new Promise((r) => waiting.push(r));
    },
  };
}

/** A TCP connection on loopback: [the accepted end, the dialling end]. */
export async function socketPair(
  t: TestContext,
  opts: { pauseOnConnect?: boolean } = {},
): Promise<{ accepted: Socket; dialled: Socket }> {
  const l = await loopbackListener(t, opts);
  const dialled = connect({ host: '127.0.0.1', port: l.port, allowHalfOpen: true });
  dialled.on('error', () => {});
  t.after(() => dialled.destroy());
  const [accepted] = await Promise.all([l.next(), once(dialled, 'connect')]);
  return { accepted, dialled };
}

/** A keyed data channel over loopback: the server's end and the client's, sharing random keys. */
export async function keyedChannel(
  t: TestContext,
): Promise<{ server: ServerConnection; client: ClientConnection }> {
  const { accepted, dialled } = await socketPair(t);
  const server: ServerConnection = new FramedConnection(accepted, decodeClientMessage);
  const client: ClientConnection = new FramedConnection(dialled, decodeServerMessage);
  const c2s = { key: randomBytes(32), nonceBase: randomBytes(4) };
  const s2c = { key: randomBytes(32), nonceBase: randomBytes(4) };
  server.decoder.setKeys(c2s);
  client.encoder.setKeys(c2s);
  server.encoder.setKeys(s2c);
  client.decoder.setKeys(s2c);
  t.after(() => {
    server.close();
    client.close();
  });
  return { server, client };
}

/** Resolves when `s` closes; with whether it was reset (ECONNRESET) rather than ended. */
export function closedHow(s: Socket): Promise<{ reset: boolean; at: number }> {
  return new Promise((resolve) => {
    let reset = false;
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') reset = true;
    });
    s.resume();
    if (s.destroyed) resolve({ reset, at: Date.now() });
    else s.on('close', () => resolve({ reset, at: Date.now() }));
  });
}

/** Polls `check` until it holds (for state that has no event), failing after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
