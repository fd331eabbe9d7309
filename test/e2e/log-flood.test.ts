/**
 * Log flooding (issue 9, item 10): a peer can make the server refuse things as fast as it likes
 * (connections over the handshake cap, logins with a key it does not know, visitors it cannot serve).
 * Each refusal path logs through one rate-limited logger: a flood gives a bounded number of lines, and
 * the lines it gives carry the count of those held back (`repeated`), so nothing is lost silently.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import { type ClientMessage, decodeServerMessage, type ServerMessage } from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import { runClientHandshake } from '../../src/transport/handshake.js';
import { captureLog, echoServer, freePort, type LogLine, startPair, tunnelsActive } from './harness.js';

const BURST = 3;
const INTERVAL_MS = 1000;

/** Lines of one message (the lines that passed and the summaries), and the refusals they account for. */
function account(lines: LogLine[], msg: string): { lines: number; counted: number; summaries: number } {
  const mine = lines.filter((l) => l.msg === msg || l.msg.startsWith(`${msg} (`));
  const summaries = mine.filter((l) => typeof l.repeated === 'number');
  return {
    lines: mine.length,
    summaries: summaries.length,
    counted: mine.reduce((n, l) => n + (typeof l.repeated === 'number' ? l.repeated : 1), 0),
  };
}

/** The most lines a rate limit lets through in `ms`: a burst and a summary per interval begun. */
function bound(ms: number): number {
  return (BURST + 1) * (Math.ceil(ms / INTERVAL_MS) + 1);
}

function closedSoon(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    s.on('error', () => {});
    s.resume();
    if (s.destroyed) resolve();
    else s.on('close', () => resolve());
  });
}

test('a flood of connections over the handshake cap logs a few lines and one summary per interval with the count', async (t) => {
  const cap = captureLog();
  const { server, client } = await startPair(t, {
    server: {
      log: cap.log,
      maxUnauthenticatedPerSource: 2,
      logRateLimit: { intervalMs: INTERVAL_MS, burst: BURST },
    },
  });
  await client.close();
  // Two silent connections hold the source's slots; every further one is refused at accept.
  const held: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect({ host: '127.0.0.1', port: server.address.port, localAddress: '127.0.0.2' });
    s.on('error', () => {});
    await once(s, 'connect');
    held.push(s);
  }
  t.after(() => {
    for (const s of held) s.destroy();
  });
  const FLOOD = 200;
  const started = Date.now();
  for (let round = 0; round < FLOOD / 50; round++) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const s = connect({ host: '127.0.0.1', port: server.address.port, localAddress: '127.0.0.2' });
        await closedSoon(s);
      }),
    );
  }
  const refused = server.metrics.authFailures.get('handshakes_per_source') ?? 0;
  assert.equal(refused, FLOOD, 'every connection of the flood was refused at accept');
  const msg = 'connection refused: too many handshakes in progress';
  // The summary comes by itself when the interval ends, while the server runs.
  const summary = await cap.waitFor((l) => l.msg.startsWith(`${msg} (`), 3 * INTERVAL_MS);
  assert.equal(summary.level, 'warn');
  assert.match(summary.msg, /\(\d+ more in the last 1 s\)$/);
  assert.equal(summary.limit, '2 per source', 'the summary carries the fields of the last refusal');
  const elapsed = Date.now() - started;
  await server.close();
  const a = account(cap.lines, msg);
  assert.equal(a.counted, FLOOD, `the lines account for every refusal (${a.lines} lines)`);
  assert.ok(a.lines <= bound(elapsed), `${a.lines} lines for ${FLOOD} refusals in ${elapsed} ms`);
  assert.ok(a.summaries >= 1);
});

test('a flood of logins with an unknown key: a bounded number of warn lines that carry the count', async (t) => {
  const cap = captureLog();
  const { server, client } = await startPair(t, {
    server: { log: cap.log, logRateLimit: { intervalMs: INTERVAL_MS, burst: BURST } },
  });
  await client.close();
  const stranger = generateIdentity('stranger');
  const LOGINS = 40;
  const started = Date.now();
  for (let round = 0; round < LOGINS / 8; round++) {
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const s = connect({ host: '127.0.0.1', port: server.address.port });
        s.on('error', () => {});
        await once(s, 'connect');
        const conn = new FramedConnection<ServerMessage, ClientMessage>(s, decodeServerMessage);
        await assert.rejects(
          runClientHandshake(conn, { identity: stranger, checkServerKey: () => {} }),
          /unknown_key|allow-list/,
        );
        conn.close();
      }),
    );
  }
  const elapsed = Date.now() - started;
  assert.equal(server.metrics.authFailures.get('unknown_key'), LOGINS);
  await server.close();
  const a = account(cap.lines, 'client refused: key not in the allow-list');
  assert.equal(a.counted, LOGINS, `the lines account for every refusal (${a.lines} lines)`);
  assert.ok(a.lines <= bound(elapsed), `${a.lines} lines for ${LOGINS} refusals in ${elapsed} ms`);
  assert.ok(a.summaries >= 1, 'at least one summary line');
  const last = cap.lines
    .filter((l) => l.msg.startsWith('client refused: key not in the allow-list ('))
    .at(-1)!;
  assert.equal(last.level, 'warn');
  assert.match(String(last.client), /^SHA256:/, 'the summary names the key of the last refusal');
});

test('a flood of visitors the server cannot serve: a bounded number of lines per reason, with the count', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const cap = captureLog();
  // No channel is ever idle (pool 0) and no visitor may wait: every visitor is refused at once.
  const pair = await startPair(t, {
    server: { log: cap.log, maxPendingPairings: 0, logRateLimit: { intervalMs: INTERVAL_MS, burst: BURST } },
    client: { dataChannelPool: 0 },
    tunnels: [{ name: 'e', remotePort, localHost: '127.0.0.1', localPort: echo.port }],
  });
  await tunnelsActive(pair.client);
  const VISITORS = 150;
  const started = Date.now();
  for (let round = 0; round < VISITORS / 50; round++) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        // The reset may come before the connect event: only the close is awaited.
        await closedSoon(connect({ host: '127.0.0.1', port: remotePort }));
      }),
    );
  }
  const elapsed = Date.now() - started;
  assert.equal(pair.server.metrics.tunnels.get(remotePort)?.pairingFailures, VISITORS);
  await pair.server.close();
  const msg = 'visitor refused: 0 visitors are already waiting for a data channel';
  const a = account(cap.lines, msg);
  assert.equal(a.counted, VISITORS, `the lines account for every refused visitor (${a.lines} lines)`);
  assert.ok(a.lines <= bound(elapsed), `${a.lines} lines for ${VISITORS} refusals in ${elapsed} ms`);
  const summary = cap.lines.find((l) => l.msg.startsWith(`${msg} (`))!;
  assert.equal(summary.level, 'warn');
  assert.equal(summary.tunnel, 'e');
  assert.match(String(summary.client), /^SHA256:/, "the summary keeps the session's fields");
});
