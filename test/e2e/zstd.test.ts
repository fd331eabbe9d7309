/**
 * zstd end to end over real loopback: a tunnel with `compress: "zstd"` whose link backs up sends
 * codec-2 frames and every byte arrives intact; a server that cannot use zstd (ServerOptions.zstd
 * false, as on a Node before 22.15) answers without the grant, and the tunnel uses LZ4 and says so.
 * Which codec went on the wire is read from the process's decompression counts (compressionStats):
 * server and client run in this process, and only they decode frames here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { jsonLogCorpus } from '../../bench/corpus.js';
import { compressionStats, zstdAvailable } from '../../src/protocol/compression.js';
import {
  captureLog,
  dial,
  echoServer,
  freePort,
  listen,
  readAll,
  startPair,
  tunnelsActive,
} from './harness.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const PAYLOAD = jsonLogCorpus(16 * 1024 * 1024).subarray(0, 16 * 1024 * 1024);

test('compress: "zstd" on a backed-up link sends codec-2 frames, and every byte arrives intact', {
  skip: !zstdAvailable() && 'this Node has no zstd',
}, async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    dataChannelPool: 1,
    tunnels: [{ name: 'logs', remotePort, localHost: '127.0.0.1', localPort: echo.port, compress: 'zstd' }],
  });
  await tunnelsActive(client);
  await client.waitFor(() => proxy.links.length >= 2, 5000);
  const wire = () => proxy.links.reduce((n, l) => n + l.client.bytesWritten, 0);
  const before = { ...compressionStats().decompressed, wire: wire() };
  // About 13 MB/s from the server to the client: its data channel backs up, so it compresses.
  proxy.throttle(128 * 1024);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const got = readAll(s);
  s.end(PAYLOAD);
  const back = await got;
  proxy.throttle(undefined);
  assert.equal(back.length, PAYLOAD.length);
  assert.equal(sha256(back), sha256(PAYLOAD), 'every byte arrived intact');
  const after = compressionStats().decompressed;
  assert.ok(after.zstd > before.zstd, `codec-2 frames were decoded (${after.zstd - before.zstd})`);
  assert.equal(after.lz4, before.lz4, 'no LZ4 frame on a tunnel that negotiated zstd');
  // The first few MB fill the socket buffers stored; the rest is compressed.
  const sent = wire() - before.wire;
  assert.ok(sent < PAYLOAD.length / 2, `${sent} bytes on the slow link for ${PAYLOAD.length}`);
});

test('the client compresses with zstd too: a service answering over a backed-up client link', {
  skip: !zstdAvailable() && 'this Node has no zstd',
}, async (t) => {
  // The local service sends the corpus to every visitor; only the client -> server link is slow.
  const service = await listen(t, (s) => s.end(PAYLOAD));
  const remotePort = await freePort();
  const pair = await startPair(t);
  const { proxy, client } = await pair.viaProxy({
    dataChannelPool: 1,
    tunnels: [
      {
        name: 'logs',
        remotePort,
        localHost: '127.0.0.1',
        localPort: service.port,
        compress: 'zstd',
      },
    ],
  });
  await tunnelsActive(client);
  await client.waitFor(() => proxy.links.length >= 2, 5000);
  const before = compressionStats().decompressed;
  proxy.throttle(128 * 1024, 'toServer');
  const got = await readAll(await dial(remotePort));
  proxy.throttle(undefined, 'toServer');
  assert.equal(sha256(got), sha256(PAYLOAD), 'every byte arrived intact');
  const after = compressionStats().decompressed;
  assert.ok(after.zstd > before.zstd, 'the server decoded codec-2 frames from the client');
  assert.equal(after.lz4, before.lz4);
});

test('a server that cannot use zstd does not grant it: the tunnel uses LZ4 and the client says so once', async (t) => {
  const echo = await echoServer(t);
  const remotePort = await freePort();
  const cap = captureLog();
  const pair = await startPair(t, { server: { zstd: false } });
  const { proxy, client } = await pair.viaProxy({
    log: cap.log,
    dataChannelPool: 1,
    tunnels: [{ name: 'logs', remotePort, localHost: '127.0.0.1', localPort: echo.port, compress: 'zstd' }],
  });
  await tunnelsActive(client);
  const warned = await cap.waitFor((l) => l.level === 'warn' && /cannot use zstd/.test(l.msg));
  assert.equal(warned.tunnel, 'logs');
  assert.match(warned.msg, /this tunnel uses LZ4/);
  assert.ok(
    client.state.snapshot().events.some((e) => e.level === 'warn' && /cannot use zstd/.test(e.message)),
  );
  await client.waitFor(() => proxy.links.length >= 2, 5000);
  const before = compressionStats().decompressed;
  proxy.throttle(128 * 1024);
  const s = await dial(remotePort, { allowHalfOpen: true });
  const got = readAll(s);
  const payload = PAYLOAD;
  s.end(payload);
  const back = await got;
  proxy.throttle(undefined);
  assert.equal(sha256(back), sha256(payload), 'every byte arrived intact');
  const after = compressionStats().decompressed;
  assert.equal(after.zstd, before.zstd, 'no codec-2 frame without the grant');
  assert.ok(after.lz4 > before.lz4, 'LZ4 instead');
  // Reconnecting opens the tunnel again: still LZ4, and no second warning.
  proxy.cut(0);
  await client.waitFor((snap) => snap.connection.kind !== 'connected', 5000);
  await tunnelsActive(client);
  assert.equal(cap.lines.filter((l) => /cannot use zstd/.test(l.msg)).length, 1, 'said once');
});
