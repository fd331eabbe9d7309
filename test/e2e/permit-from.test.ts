/**
 * Visitor allow-lists with two loopback source addresses (127.0.0.1 and 127.0.0.2): a key's
 * permitfrom in the allow-list file and a tunnel's permitFrom (which only narrows). A refused
 * visitor is closed at accept — nothing reaches the client or the service — counted per tunnel and
 * logged through the rate-limited logger; a narrowing of the file applies live and ends the
 * connections the new list no longer allows, within a second.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { TunnelConfig } from '../../src/client/index.js';
import { formatPublicKeyLine, generateIdentity, type Identity } from '../../src/identity/index.js';
import type { ServerOptions } from '../../src/server/index.js';
import { captureLog, freePort, listen, startPair, tunnelsActive, within } from './harness.js';

async function allowFile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mtt-permitfrom-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'allowed_keys');
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

const line = (id: Identity, options: string) => `${options} ${formatPublicKeyLine(id.publicRaw, 'k')}\n`;

/** Connects to 127.0.0.1:port from `from`; resolves once connected (or already reset). */
async function visit(port: number, from: string): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, localAddress: from });
  s.on('error', () => {});
  await new Promise<void>((resolve) => {
    s.once('connect', () => resolve());
    s.once('close', () => resolve());
  });
  return s;
}

/** Sends "ping" and resolves with the first answer, or with 'closed' when the server closed instead. */
function ping(s: Socket): Promise<string> {
  if (s.destroyed) return Promise.resolve('closed');
  s.write('ping');
  return within(
    3000,
    'an answer or a close',
    new Promise<string>((resolve) => {
      s.once('data', (c: Buffer) => resolve(c.toString()));
      s.once('close', () => resolve('closed'));
    }),
  );
}

/** An echo service that counts the connections it gets. */
async function countingEcho(t: TestContext) {
  const seen: string[] = [];
  const server = await listen(t, (s) => {
    seen.push(String(s.remoteAddress));
    s.pipe(s);
  });
  return { port: server.port, seen };
}

/**
 * A counting echo service behind a tunnel "web" of a key whose allow-list line has `keyOptions`
 * (the file live, as the server watches it); `tunnel` adds to the tunnel, `server` to the server.
 */
async function permitPair(
  t: TestContext,
  keyOptions: string,
  opts: { tunnel?: Partial<TunnelConfig>; server?: Partial<ServerOptions> } = {},
) {
  const echo = await countingEcho(t);
  const me = generateIdentity('me');
  const path = await allowFile(t, line(me, keyOptions));
  const remotePort = await freePort();
  const pair = await startPair(t, {
    server: { allowedKeysPath: path, ...opts.server },
    client: { identity: me },
    tunnels: [{ name: 'web', remotePort, localPort: echo.port, ...opts.tunnel }],
  });
  await tunnelsActive(pair.client);
  return { echo, me, path, remotePort, pair };
}

test("a key's permitfrom: 127.0.0.2 gets in, 127.0.0.1 is closed at accept, counted and logged", async (t) => {
  const cap = captureLog();
  const { echo, remotePort, pair } = await permitPair(t, 'permitfrom="127.0.0.2/32,2001:db8::/32"', {
    server: { log: cap.log },
  });
  const ok = await visit(remotePort, '127.0.0.2');
  assert.equal(await ping(ok), 'ping');
  ok.destroy();
  const refused = await visit(remotePort, '127.0.0.1');
  assert.equal(await ping(refused), 'closed');
  const counters = pair.server.metrics.tunnels.get(remotePort)!;
  assert.equal(counters.refused.not_permitted, 1);
  assert.equal(counters.totalConnections, 1, 'the refused visitor never became a tunneled connection');
  assert.equal(echo.seen.length, 1, 'the service saw only the allowed visitor');
  const logged = await cap.waitFor(
    (l) => l.msg === 'visitor refused: its address is not allowed for this tunnel',
  );
  assert.equal(logged.level, 'warn');
  assert.match(String(logged.peer), /^(::ffff:)?127\.0\.0\.1:\d+$/);
  assert.equal(pair.server.metrics.recentRefusals.at(-1)?.reason, 'not_permitted');
  const text = await pair.server.metrics.prometheus();
  assert.match(
    text,
    new RegExp(
      `mtt_tunnel_visitors_refused_total\\{tunnel="web",port="${remotePort}",reason="not_permitted"\\} 1`,
    ),
  );
  // Nothing reached the client either.
  const snap = await pair.client.waitFor((s) => s.tunnels[0]!.totalConnections === 1);
  assert.equal(snap.tunnels[0]!.failedDials, 0);
});

test("a tunnel's permitFrom narrows the key's: only 127.0.0.1 of the key's 127.0.0.0/8", async (t) => {
  const { echo, remotePort, pair } = await permitPair(t, 'permitfrom="127.0.0.0/8"', {
    tunnel: { permitFrom: ['127.0.0.1/32', '10.0.0.0/8'] },
  });
  assert.equal(await ping(await visit(remotePort, '127.0.0.1')), 'ping');
  assert.equal(await ping(await visit(remotePort, '127.0.0.2')), 'closed');
  assert.equal(pair.server.metrics.tunnels.get(remotePort)!.refused.not_permitted, 1);
  assert.equal(echo.seen.length, 1);
});

test('narrowing permitfrom in the file ends the connections it no longer allows, within a second', async (t) => {
  const { me, path, remotePort, pair } = await permitPair(t, 'permitfrom="127.0.0.0/8"');
  const stays = await visit(remotePort, '127.0.0.1');
  const goes = await visit(remotePort, '127.0.0.2');
  assert.equal(await ping(stays), 'ping');
  assert.equal(await ping(goes), 'ping');
  const closed = new Promise<number>((r) => goes.once('close', () => r(Date.now())));
  const changed = Date.now();
  await writeFile(path, line(me, 'permitfrom="127.0.0.1"'), { mode: 0o600 });
  const at = await within(3000, 'the 127.0.0.2 connection closes', closed);
  assert.ok(at - changed < 1000, `closed ${at - changed} ms after the file changed`);
  // The allowed one goes on, the tunnel stays open, and a new 127.0.0.2 visitor is refused.
  assert.equal(await ping(stays), 'ping');
  assert.equal(await ping(await visit(remotePort, '127.0.0.2')), 'closed');
  assert.equal(pair.client.state.snapshot().tunnels[0]!.status, 'active');
  // Widening again lets it back in.
  await writeFile(path, line(me, 'permitfrom="127.0.0.0/8"'), { mode: 0o600 });
  for (let i = 0; ; i++) {
    if ((await ping(await visit(remotePort, '127.0.0.2'))) === 'ping') break;
    assert.ok(i < 30, 'widening applies');
    await new Promise((r) => setTimeout(r, 100));
  }
});
