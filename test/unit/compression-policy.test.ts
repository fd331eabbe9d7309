/**
 * The sender's adaptive compression (docs/PROTOCOL.md, "Sender's compression policy"): LinkMonitor's
 * decisions on an injected clock, then the encoder's choices over real loopback sockets, and the
 * relay gathering reads into larger frames while its channel is backed up. Decisions are asserted
 * (which codec, how large a frame), never how long anything took.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { FrameDecoder } from '../../src/protocol/frame-codec.js';
import { MAX_PAYLOAD } from '../../src/protocol/limits.js';
import { decodeClientMessage, decodeServerMessage } from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import type { ServerConnection } from '../../src/transport/handshake.js';
import {
  LINK_MEMORY_FRAMES,
  LINK_MEMORY_MS,
  LinkMonitor,
  MAX_LINK_MEMORY_MS,
} from '../../src/transport/link-monitor.js';
import { relay } from '../../src/transport/relay.js';
import { loopbackListener, socketPair, until } from './helpers.js';

/** Compresses to about half: 32 KiB of random bytes, twice (LZ4 finds the second copy). */
function halfCompressible(len = 64 * 1024): Buffer {
  const half = randomBytes(len / 2);
  return Buffer.concat([half, half]);
}

describe('LinkMonitor (an injected clock)', () => {
  const clock = () => {
    const c = { t: 1000, now: () => c.t };
    return c;
  };

  test('a socket that never backs up is not link-bound', () => {
    const c = clock();
    const m = new LinkMonitor(c.now);
    assert.equal(m.linkBound(), false);
    for (let i = 0; i < 100; i++) m.wrote(0);
    assert.equal(m.linkBound(), false);
  });

  test('a write that leaves a backlog makes it link-bound at once', () => {
    const m = new LinkMonitor(clock().now);
    m.wrote(70_000);
    assert.equal(m.linkBound(), true);
  });

  test('it stays link-bound for LINK_MEMORY_FRAMES frames, and for LINK_MEMORY_MS, after the last backlog', () => {
    const c = clock();
    const m = new LinkMonitor(c.now);
    m.wrote(70_000);
    c.t += 10 * LINK_MEMORY_MS; // the clock alone does not end it…
    for (let i = 0; i < LINK_MEMORY_FRAMES - 1; i++) m.wrote(0);
    assert.equal(m.linkBound(), true);
    m.wrote(0); // …the frames do, once the time is over too
    assert.equal(m.linkBound(), false);
    m.wrote(1);
    for (let i = 0; i < 2 * LINK_MEMORY_FRAMES; i++) m.wrote(0);
    assert.equal(m.linkBound(), true, 'within LINK_MEMORY_MS of the backlog');
    c.t += LINK_MEMORY_MS;
    assert.equal(m.linkBound(), false);
  });

  test('storing that backs the socket up again at once doubles the memory; a long calm resets it', () => {
    const c = clock();
    const m = new LinkMonitor(c.now);
    const expire = () => {
      for (let i = 0; i < LINK_MEMORY_FRAMES; i++) m.wrote(0);
      c.t += m.memoryMs;
      assert.equal(m.linkBound(), false);
    };
    m.wrote(1);
    assert.equal(m.memoryMs, LINK_MEMORY_MS);
    for (let expected = 2 * LINK_MEMORY_MS; expected <= MAX_LINK_MEMORY_MS; expected *= 2) {
      expire();
      m.wrote(1); // stored frames overflowed the link again right away
      assert.equal(m.memoryMs, expected);
    }
    expire();
    m.wrote(1);
    assert.equal(m.memoryMs, MAX_LINK_MEMORY_MS, 'no further than the maximum');
    expire();
    c.t += 2 * MAX_LINK_MEMORY_MS; // a long stretch of stored frames the link took at once
    m.wrote(1);
    assert.equal(m.memoryMs, LINK_MEMORY_MS);
  });
});

/**
 * A keyed channel's sending end over loopback, and the raw socket at the other end: it reads
 * nothing until the test attaches a reader (then `frames()` decodes what arrives).
 */
async function rawChannel(t: TestContext, opts: { writableHighWaterMark?: number } = {}) {
  const l = await loopbackListener(t);
  const dialled = connect({ host: '127.0.0.1', port: l.port, allowHalfOpen: true, ...opts });
  dialled.on('error', () => {});
  t.after(() => dialled.destroy());
  const [raw] = await Promise.all([l.next(), once(dialled, 'connect')]);
  const keys = { key: randomBytes(32), nonceBase: randomBytes(4) };
  const sender: ServerConnection = new FramedConnection(dialled, decodeClientMessage);
  sender.encoder.setKeys(keys);
  t.after(() => sender.close());
  const decoder = new FrameDecoder(decodeServerMessage);
  decoder.setKeys(keys);
  /** Reads the raw end from now on; each Data payload goes to `onData`. */
  const read = (onData: (payload: Buffer) => void) => {
    raw.on('data', (c: Buffer) => {
      decoder.push(c);
      for (let m = decoder.next(); m; m = decoder.next()) if (m.type === 'Data') onData(m.payload);
    });
  };
  return { sender, read };
}

describe('the encoder over a real socket', () => {
  test('a paused reader makes it compress: frames are stored until the socket backs up, then LZ4', async (t) => {
    const { sender } = await rawChannel(t);
    const frame = halfCompressible();
    let sent = 0;
    while (sender.writeBacklog === 0) {
      assert.ok(sent < 4096, 'the socket never backed up');
      sender.send({ type: 'Data', fin: false, payload: frame });
      sent += 1;
    }
    assert.deepEqual(sender.encoder.frames, { stored: sent, lz4: 0, zstd: 0 }, 'drained at once: stored');
    for (let i = 0; i < 10; i++) sender.send({ type: 'Data', fin: false, payload: frame });
    assert.deepEqual(sender.encoder.frames, { stored: sent, lz4: 10, zstd: 0 }, 'backed up: compressed');
  });

  test('a reader that drains makes it store the same data', async (t) => {
    const { sender, read } = await rawChannel(t);
    let got = 0;
    read(() => {
      got += 1;
    });
    const frame = halfCompressible(1024);
    for (let i = 0; i < 200; i++) {
      sender.send({ type: 'Data', fin: false, payload: frame });
      assert.equal(sender.writeBacklog, 0);
    }
    await until(() => got === 200, 5000, 'all 200 frames delivered');
    assert.deepEqual(sender.encoder.frames, { stored: 200, lz4: 0, zstd: 0 });
  });

  test("'never' (a tunnel with compress: false) stores every frame, backed up or not", async (t) => {
    const { sender } = await rawChannel(t);
    sender.encoder.setCompression('never');
    const frame = halfCompressible();
    while (sender.writeBacklog === 0) sender.send({ type: 'Data', fin: false, payload: frame });
    for (let i = 0; i < 10; i++) sender.send({ type: 'Data', fin: false, payload: frame });
    assert.equal(sender.link.linkBound(), true);
    assert.equal(sender.encoder.frames.lz4, 0);
  });
});

describe('the relay while its channel is backed up', () => {
  test('gathers the reads into frames larger than one read, and delivers every byte in order', async (t) => {
    // visitor → relay → the channel → the raw end, which reads nothing until the relay has read
    // every byte: the channel stays backed up, and its buffer is large enough that the relay never
    // has to pause (so every read after the first backlog lands in a gathered frame).
    const { sender, read } = await rawChannel(t, { writableHighWaterMark: 64 * 1024 * 1024 });
    sender.encoder.setCompression('never');
    const { accepted: relayed, dialled: visitor } = await socketPair(t);
    const payload = randomBytes(24 * 1024 * 1024);
    let relayedBytes = 0;
    relay(sender, relayed, { onFromSocket: (n) => (relayedBytes += n) });
    visitor.write(payload);
    await until(() => relayedBytes === payload.length, 20_000, 'the relay read every byte');
    assert.ok(sender.writeBacklog > 0, 'the channel is backed up');
    const sizes: number[] = [];
    const chunks: Buffer[] = [];
    let got = 0;
    const done = new Promise<void>((resolve) => {
      read((p) => {
        sizes.push(p.length);
        chunks.push(p);
        got += p.length;
        if (got === payload.length) resolve();
      });
    });
    await done;
    assert.ok(Buffer.concat(chunks).equals(payload), 'every byte, in order');
    const largest = Math.max(...sizes);
    assert.ok(largest > 64 * 1024, `the largest frame carries ${largest} bytes: more than one read`);
    assert.ok(largest <= MAX_PAYLOAD);
  });
});
