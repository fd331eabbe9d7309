/**
 * What the fuzzing campaign found in the parsers, one test each, with the input it found. The
 * campaign's own oracle is the property; these keep the exact case.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { formatHostPort, splitHostPort } from '../../src/config/host-port.js';

test('splitHostPort refuses a bare host with brackets in it (config-values, seed 12 case 92658, seed 13 case 35372)', () => {
  for (const s of [
    '[0000]0000]0000]:6535',
    '[g]g]:9999',
    '[[200[2001]001]:1',
    '[db[db8]:80',
    'a]:1',
    'a[b:1',
  ]) {
    assert.throws(() => splitHostPort(s), ConfigError, s);
  }
  // What it accepts still survives formatting.
  for (const s of ['[::1]:9000', 'a.b:1', '127.0.0.1:80']) {
    const { host, port } = splitHostPort(s);
    assert.deepEqual(splitHostPort(formatHostPort(host, port)), { host, port });
  }
});

test('the LZ4 fallback refuses a match offset of 0 instead of handing out old memory (lz4, seed 30 case 317)', () => {
  // lz4-wasm-nodejs copies an offset-0 match from output memory it never wrote: bytes of an earlier
  // decompression. Run the codec on its WASM fallback in a child, decompress a secret, then the block.
  const codec = new URL('../../src/protocol/compression.js', import.meta.url).href;
  const script = `
    import { compressionStats, lz4Compress, lz4Decompress } from ${JSON.stringify(codec)};
    const secret = Buffer.from('SECRET-COOKIE=hunter2; '.repeat(4000));
    lz4Decompress(lz4Compress(secret), 262150);
    // 1 literal, a match at offset 0 of 60000 bytes, 6 literals.
    const ext = []; let m = 60000 - 19; while (m >= 255) { ext.push(255); m -= 255; } ext.push(m);
    const body = Buffer.concat([Buffer.from([0x1f, 0x58, 0, 0]), Buffer.from(ext), Buffer.from([0x60]), Buffer.from('~~~~~~')]);
    const size = Buffer.alloc(4); size.writeUInt32LE(60007);
    let result;
    try {
      const out = lz4Decompress(Buffer.concat([size, body]), 262150);
      result = 'accepted, ' + (out.toString('latin1').match(/SECRET-COOKIE/g) ?? []).length + ' copies of the secret';
    } catch (err) {
      result = err.code;
    }
    process.stdout.write(JSON.stringify({ backend: compressionStats().backend, result }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, MTT_LZ4: 'wasm' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { backend: 'lz4-wasm-nodejs', result: 'ERR_DECOMPRESS' });
});

test('the LZ4 fallback guard walks every sequence: an offset 0 after long literals and a good match is refused; zero bytes in literals are not', () => {
  // The guard reads the block sequence by sequence (literal-length extensions, then the offset); a
  // zero offset in a later sequence must be found too, and two zero literal bytes are no offset.
  const codec = new URL('../../src/protocol/compression.js', import.meta.url).href;
  const script = `
    import { compressionStats, lz4Compress, lz4Decompress } from ${JSON.stringify(codec)};
    const secret = Buffer.from('SECRET-COOKIE=hunter2; '.repeat(4000));
    lz4Decompress(lz4Compress(secret), 262150);
    const sized = (body, n) => { const s = Buffer.alloc(4); s.writeUInt32LE(n); return Buffer.concat([s, body]); };
    const ext = (m) => { const e = []; while (m >= 255) { e.push(255); m -= 255; } e.push(m); return Buffer.from(e); };
    const run = (block, n) => {
      try {
        const out = lz4Decompress(sized(block, n), 262150);
        return 'accepted, ' + (out.toString('latin1').match(/SECRET-COOKIE/g) ?? []).length + ' copies of the secret';
      } catch (err) {
        return err.code;
      }
    };
    // Sequence 1: 20 literals (15 + an extension of 5), a match at offset 1 of 4 bytes. Sequence 2:
    // 1 literal, a match at offset 0 of 60000 bytes. Then 6 closing literals.
    const later = Buffer.concat([
      Buffer.from([0xf0, 5]), Buffer.alloc(20, 0x41), Buffer.from([1, 0]),
      Buffer.from([0x1f, 0x42, 0, 0]), ext(60000 - 19), Buffer.from([0x60]), Buffer.from('~~~~~~'),
    ]);
    // Literals only, two of them zero bytes: a valid block.
    const zeros = Buffer.from([0x40, 0, 0, 0x41, 0x42]);
    process.stdout.write(JSON.stringify({
      backend: compressionStats().backend,
      later: run(later, 20 + 4 + 1 + 60000 + 6),
      zeros: run(zeros, 4),
    }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, MTT_LZ4: 'wasm' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    backend: 'lz4-wasm-nodejs',
    later: 'ERR_DECOMPRESS',
    zeros: 'accepted, 0 copies of the secret',
  });
});
