/**
 * LZ4 always works or says why: the WASM build reads what the native binding writes and the other
 * way round; when the native binding cannot load, real mtt processes warn once (naming the platform)
 * and tunnel compressed traffic through the WASM build; with no LZ4 at all the server refuses to
 * start with the package to install. (Here the binding is hidden by a --require preload; the
 * packaging system test deletes the real binary from an installed package.)
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { compressionStats, lz4Decompress } from '../../src/protocol/compression.js';
import { MAX_PLAINTEXT } from '../../src/protocol/limits.js';
import { freshHome, homeEnv, runMtt, spawnMtt } from '../cli/run-mtt.js';
import { freePort } from '../e2e/harness.js';

const require = createRequire(import.meta.url);
const napi = require('lz4-napi') as typeof import('lz4-napi');
const wasm = require('lz4-wasm-nodejs') as {
  compress(i: Uint8Array): Uint8Array;
  decompress(i: Uint8Array): Uint8Array;
};

function samples(): Buffer[] {
  const json = Buffer.from(
    JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `user${i}`, ok: i % 3 === 0 }))),
  );
  return [
    Buffer.alloc(0),
    Buffer.from('a'),
    json.subarray(0, 16 * 1024),
    json,
    randomBytes(64 * 1024),
    Buffer.alloc(256 * 1024, 7),
  ];
}

test('the native and the WASM LZ4 speak the same size-prefixed block format, both ways', () => {
  for (const input of samples()) {
    const fromNative = napi.compressSync(input);
    const fromWasm = Buffer.from(wasm.compress(input));
    assert.equal(fromNative.readUInt32LE(0), input.length);
    assert.equal(fromWasm.readUInt32LE(0), input.length);
    assert.ok(Buffer.from(wasm.decompress(fromNative)).equals(input), `wasm reads native, ${input.length} B`);
    assert.ok(napi.uncompressSync(fromWasm).equals(input), `native reads wasm, ${input.length} B`);
  }
});

test('compressionStats counts bodies that fail to decompress, by reason', () => {
  const before = compressionStats().errors;
  assert.throws(() => lz4Decompress(Buffer.from([1, 2]), MAX_PLAINTEXT), { code: 'ERR_DECOMPRESS' });
  const huge = Buffer.alloc(8);
  huge.writeUInt32LE(MAX_PLAINTEXT + 1, 0);
  assert.throws(() => lz4Decompress(huge, MAX_PLAINTEXT), { code: 'ERR_DECOMPRESSED_TOO_LARGE' });
  const corrupt = Buffer.concat([Buffer.from([16, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff])]);
  assert.throws(() => lz4Decompress(corrupt, MAX_PLAINTEXT), { code: 'ERR_DECOMPRESS' });
  const after = compressionStats();
  assert.equal(after.errors.decompress - before.decompress, 2);
  assert.equal(after.errors.decompressedTooLarge - before.decompressedTooLarge, 1);
  assert.equal(after.backend, 'lz4-napi');
  assert.equal(after.fallback, undefined);
});

/** A preload that makes `require(name)` fail as a missing prebuilt binary does. */
async function hidePreload(t: TestContext, names: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mtt-lz4-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'hide.cjs');
  await writeFile(
    file,
    `const Module = require('node:module');
const hidden = new Set(${JSON.stringify(names)});
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (hidden.has(request)) {
    const e = new Error("Cannot find module '" + request + "' (hidden by the test)");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
`,
  );
  return file;
}

/** A service answering with a large, compressible body, and its sha256. */
async function bigService(t: TestContext): Promise<{ port: number; sha: string }> {
  const body = Buffer.from(
    Array.from({ length: 20000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(
      '',
    ),
  );
  const server = createServer((_req, res) => res.end(body));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return {
    port: (server.address() as AddressInfo).port,
    sha: createHash('sha256').update(body).digest('hex'),
  };
}

test('without the native binding, server and client warn once naming the platform and tunnel through WASM', async (t) => {
  const home = await freshHome(t);
  const preload = await hidePreload(t, ['lz4-napi']);
  // Compressed frames on an idle loopback: the adaptive policy alone would store them.
  const env = homeEnv(home, { NODE_OPTIONS: `--require ${preload}`, MTT_COMPRESSION: 'always' });
  const service = await bigService(t);
  const controlPort = await freePort();
  const publicPort = await freePort();
  for (const args of [
    ['keygen', '-f', 'client_key'],
    ['allow', 'client_key.pub', '--allowed-keys', 'allowed_keys'],
  ]) {
    const r = await runMtt(args, { env, cwd: home });
    assert.equal(r.code, 0, r.stderr);
  }
  const server = spawnMtt(
    t,
    ['server', '--host', '127.0.0.1', '--port', String(controlPort), '--public-host', '127.0.0.1'],
    {
      env: homeEnv(home, {
        NODE_OPTIONS: `--require ${preload}`,
        MTT_CONFIG_DIR: home,
        MTT_COMPRESSION: 'always',
      }),
      cwd: home,
    },
  );
  await server.waitFor('"msg":"mtt server ready"');
  await writeFile(
    join(home, 'client.json'),
    JSON.stringify({
      server: `127.0.0.1:${controlPort}`,
      identity: 'client_key',
      tunnels: [{ name: 'big', remotePort: publicPort, localPort: service.port }],
    }),
  );
  const client = spawnMtt(t, ['client', '--config', 'client.json'], { env, cwd: home });
  await client.waitFor('"msg":"tunnel active"');
  // Several requests: every one must arrive intact (compressed frames decoded by the WASM build).
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`http://127.0.0.1:${publicPort}/`);
    const got = createHash('sha256')
      .update(Buffer.from(await res.arrayBuffer()))
      .digest('hex');
    assert.equal(got, service.sha, `request ${i}`);
  }
  assert.equal(await client.stop(), 0);
  assert.equal(await server.stop(), 0);
  for (const [who, p] of [
    ['server', server],
    ['client', client],
  ] as const) {
    const warnings = p
      .stderr()
      .split('\n')
      .filter((l) => l.includes('native LZ4 binding'));
    assert.equal(warnings.length, 1, `${who} warns exactly once:\n${p.stderr()}`);
    const w = JSON.parse(warnings[0]!) as { level: string; msg: string; platform: string };
    assert.equal(w.level, 'warn');
    assert.match(w.platform, /^linux-x64-(glibc|musl)$|^[a-z0-9]+-[a-z0-9]+/);
    assert.match(w.msg, new RegExp(`cannot load on ${w.platform} .*using the WASM build`));
  }
});

test('with no LZ4 implementation at all, mtt server refuses to start and names the package', async (t) => {
  const home = await freshHome(t);
  const preload = await hidePreload(t, ['lz4-napi', 'lz4-wasm-nodejs']);
  const r = await runMtt(['server', '--host', '127.0.0.1', '--port', '0', '--log-format', 'pretty'], {
    env: homeEnv(home, { NODE_OPTIONS: `--require ${preload}` }),
    cwd: home,
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^mtt: the LZ4 package lz4-wasm-nodejs is not installed; reinstall minitcptunnel/m);
  assert.doesNotMatch(r.stderr, /listening/);
});

test('MTT_LZ4=wasm chooses the WASM build; a wrong MTT_LZ4 value is one clear line', async (t) => {
  const home = await freshHome(t);
  const probe = join(home, 'probe.mjs');
  const mod = new URL('../../src/protocol/compression.js', import.meta.url).href;
  await writeFile(
    probe,
    `import { lz4Compress, lz4Decompress, compressionStats } from '${mod}';
const input = Buffer.alloc(10000, 'x');
const out = lz4Decompress(lz4Compress(input), 1 << 20);
console.log(JSON.stringify({ ok: out.equals(input), ...compressionStats() }));\n`,
  );
  const { execFileSync } = await import('node:child_process');
  const stats = JSON.parse(
    execFileSync(process.execPath, [probe], { env: { ...process.env, MTT_LZ4: 'wasm' }, encoding: 'utf8' }),
  ) as { ok: boolean; backend: string; fallback?: unknown };
  assert.deepEqual([stats.ok, stats.backend, stats.fallback], [true, 'lz4-wasm-nodejs', undefined]);
  const bad = await runMtt(['server', '--port', '0', '--log-format', 'pretty'], {
    env: homeEnv(home, { MTT_LZ4: 'fast' }),
    cwd: home,
  });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^mtt: MTT_LZ4 must be "wasm" or "native", not "fast"/m);
});
