/**
 * docs/PROTOCOL.md's test vectors are checked here, so the page cannot lag the code: every output of
 * every vector block is recomputed from the block's inputs with the real code, and the documented
 * formulas (transcript hash, signed data, HKDF split, AEAD layout) are re-derived with node:crypto.
 */
import assert from 'node:assert/strict';
import { createHash, hkdfSync, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zstdDecompressSync } from 'node:zlib';
import { FrameDecoder } from '../../src/protocol/frame-codec.js';
import { ed25519PublicKey } from '../../src/protocol/handshake-machines.js';
import { decodeMessage, MESSAGES, sentBy } from '../../src/protocol/messages.js';
import { openFrame } from './fixtures.js';
import {
  type Entry,
  hexOf,
  kindOf,
  messageFromJson,
  parseVectorBlocks,
  VECTOR_KINDS,
  type VectorBlock,
} from './vector-model.js';

// dist/test/protocol/vectors.test.js -> the repository root is three levels up.
const docPath = fileURLToPath(new URL('../../../docs/PROTOCOL.md', import.meta.url));
const page = readFileSync(docPath, 'utf8');
const blocks = parseVectorBlocks(page);

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hkdf = (ikm: Buffer, salt: Buffer, info: string, len: number): Buffer =>
  Buffer.from(hkdfSync('sha256', ikm, salt, info, len));
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** The block's entries as a map of hex values. */
function hexMap(block: VectorBlock): (key: string) => Buffer {
  const m = new Map(block.entries);
  return (key) => {
    const v = m.get(key);
    assert.ok(v !== undefined, `${block.name}: missing ${key}`);
    return hexOf(v);
  };
}

function byName(name: string): VectorBlock {
  const b = blocks.find((x) => x.name === name);
  assert.ok(b, `docs/PROTOCOL.md has no vector block ${name}`);
  return b;
}

/** Compares outputs ignoring hex wrapping; JSON compared as text. */
function sameValue(a: string, b: string): boolean {
  return a.replace(/\s+/g, '') === b.replace(/\s+/g, '');
}

describe('docs/PROTOCOL.md test vectors', () => {
  test('the page has a block of every kind, and no unknown kind', () => {
    const kinds = new Set(blocks.map((b) => b.name.split('--')[0]));
    for (const k of Object.keys(VECTOR_KINDS)) assert.ok(kinds.has(k), `no ${k} vector in the page`);
    for (const b of blocks) assert.doesNotThrow(() => kindOf(b.name));
    assert.ok(blocks.length >= 8);
  });

  for (const block of blocks) {
    test(`vector ${block.name}: the code reproduces every output`, () => {
      const kind = kindOf(block.name);
      const computed = kind.compute(block.entries);
      if (kind.interleaved) {
        assert.equal(block.entries.length, computed.length, `${block.name}: entry count`);
        block.entries.forEach(([k, v], i) => {
          const [ck, cv] = computed[i]!;
          assert.equal(k, ck, `${block.name}: entry ${i} key`);
          assert.ok(sameValue(v, cv), `${block.name}: entry ${i} (${k})\n  page: ${v}\n  code: ${cv}`);
        });
        return;
      }
      const outputs: Entry[] = block.entries.filter(([k]) => !kind.inputs.includes(k));
      const inputs = block.entries.filter(([k]) => kind.inputs.includes(k)).map(([k]) => k);
      assert.deepEqual([...inputs].sort(), [...kind.inputs].sort(), `${block.name}: inputs`);
      assert.deepEqual(
        outputs.map(([k]) => k),
        computed.map(([k]) => k),
        `${block.name}: the page lists exactly the outputs the code computes, in order`,
      );
      for (const [k, v] of outputs) {
        const cv = computed.find(([ck]) => ck === k)![1];
        assert.ok(sameValue(v, cv), `${block.name}: ${k}\n  page: ${v}\n  code: ${cv}`);
      }
    });
  }

  test("the page's message table is the code's message table (code, name, sender, stream_id use)", () => {
    const rows = [
      ...page.matchAll(/^\| (0x[0-9a-f]{2}) \| (\w+) +\| (client|server|both) +\|[^|]*\| ([^|]+?) +\|/gm),
    ];
    const table = Object.entries(MESSAGES).map(([name, r]) => ({
      code: `0x${r.code.toString(16).padStart(2, '0')}`,
      name,
      from: r.from,
      usesStream: r.usesStream,
    }));
    assert.deepEqual(
      rows.map((m) => ({ code: m[1], name: m[2], from: m[3], usesStream: m[4] !== '0' })),
      table,
    );
    for (const side of ['client', 'server'] as const) {
      const line = new RegExp(`a ${side} sends ((?:0x[0-9a-f]{2}(?:, )?)+)`).exec(page);
      assert.ok(line, `the page lists what a ${side} sends`);
      const listed = line[1]!.split(', ').map((c) => Number.parseInt(c, 16));
      const codes = Object.values(MESSAGES)
        .map((r) => r.code)
        .filter((c) => sentBy(c, side));
      assert.deepEqual(listed, codes, `what a ${side} sends`);
    }
  });

  test('control handshake: the documented formulas hold (node:crypto, not the code)', () => {
    const v = hexMap(byName('control-handshake'));
    // Well-known published values: RFC 8032 TEST 1/2 public keys, RFC 7748 section 6.1.
    assert.equal(
      v('client_identity_public').toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    assert.equal(
      v('server_identity_public').toString('hex'),
      '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    );
    assert.equal(
      v('client_ephemeral_public').toString('hex'),
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
    assert.equal(
      v('server_ephemeral_public').toString('hex'),
      'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
    );
    assert.equal(
      v('shared_secret').toString('hex'),
      '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
    );

    const ch = v('client_hello_plaintext');
    const sh = v('server_hello_plaintext');
    assert.equal(ch.length, 105);
    assert.equal(sh.length, 169);
    assert.deepEqual(ch.subarray(0, 9), Buffer.from('010000000000000201', 'hex'));
    assert.deepEqual(ch.subarray(9, 41), v('client_identity_public'));
    assert.deepEqual(ch.subarray(41, 73), v('client_ephemeral_public'));
    assert.deepEqual(ch.subarray(73), v('client_nonce'));
    assert.deepEqual(sh.subarray(0, 9), Buffer.from('020000000000000202', 'hex'));
    assert.deepEqual(sh.subarray(9, 41), v('server_identity_public'));
    assert.deepEqual(sh.subarray(41, 73), v('server_ephemeral_public'));
    assert.deepEqual(sh.subarray(73, 105), v('server_nonce'));
    assert.deepEqual(v('client_hello_frame'), Buffer.concat([u32(ch.length), ch]));
    assert.deepEqual(v('server_hello_frame'), Buffer.concat([u32(sh.length), sh]));

    const unsigned = sh.subarray(0, sh.length - 64);
    const serverSigned = Buffer.concat([Buffer.from('MTT-v1 server hello\0'), sha256(ch, unsigned)]);
    assert.deepEqual(v('server_signed_data'), serverSigned);
    const serverKey = ed25519PublicKey(v('server_identity_public'));
    assert.ok(
      verify(null, serverSigned, serverKey, sh.subarray(sh.length - 64)),
      'server signature verifies',
    );

    const th = sha256(ch, sh);
    assert.deepEqual(v('transcript_hash'), th);
    const okm = hkdf(v('shared_secret'), th, 'MTT-v1 control keys', 120);
    assert.deepEqual(v('okm'), okm);
    assert.deepEqual(v('key_c2s'), okm.subarray(0, 32));
    assert.deepEqual(v('key_s2c'), okm.subarray(32, 64));
    assert.deepEqual(v('nonce_base_c2s'), okm.subarray(64, 68));
    assert.deepEqual(v('nonce_base_s2c'), okm.subarray(68, 72));
    assert.deepEqual(v('session_secret'), okm.subarray(72, 104));
    assert.deepEqual(v('session_id'), okm.subarray(104, 120));

    const clientSigned = Buffer.concat([Buffer.from('MTT-v1 client auth\0'), th]);
    assert.deepEqual(v('client_signed_data'), clientSigned);
    const auth = v('client_auth_plaintext');
    assert.deepEqual(auth.subarray(0, 6), Buffer.from('030000000000', 'hex'));
    assert.ok(verify(null, clientSigned, ed25519PublicKey(v('client_identity_public')), auth.subarray(6)));

    const c2s = { key: v('key_c2s'), nonceBase: v('nonce_base_c2s') };
    const s2c = { key: v('key_s2c'), nonceBase: v('nonce_base_s2c') };
    assert.deepEqual(openFrame(c2s, 0n, v('client_auth_frame')), Buffer.concat([Buffer.of(0), auth]));
    assert.deepEqual(
      openFrame(s2c, 0n, v('auth_ok_frame')),
      Buffer.concat([Buffer.of(0), v('auth_ok_plaintext')]),
    );
    // AuthOk: heartbeat_ms u32 | range_count u16 | (low u16, high u16)* | max_connections u32 | rate_limit u32.
    assert.deepEqual(
      v('auth_ok_plaintext'),
      Buffer.from(
        '040000000000' + '00001388' + '0002' + '04000800' + '1f901f90' + '00000000' + '00000000',
        'hex',
      ),
    );
  });

  test('data handshake: the documented formulas hold (node:crypto, not the code)', () => {
    const v = hexMap(byName('data-handshake'));
    const hello = v('data_hello_plaintext');
    const ack = v('data_hello_ack_plaintext');
    assert.deepEqual(
      hello,
      Buffer.concat([Buffer.from('060000000000000203', 'hex'), v('session_id'), v('client_nonce')]),
    );
    assert.deepEqual(ack, Buffer.concat([Buffer.from('0700000000000002', 'hex'), v('server_nonce')]));
    const salt = sha256(hello, ack);
    assert.deepEqual(v('salt'), salt);
    const okm = hkdf(v('session_secret'), salt, 'MTT-v1 data keys', 72);
    assert.deepEqual(v('okm'), okm);
    const c2s = { key: okm.subarray(0, 32), nonceBase: okm.subarray(64, 68) };
    assert.deepEqual(v('key_c2s'), c2s.key);
    assert.deepEqual(v('key_s2c'), okm.subarray(32, 64));
    assert.deepEqual(v('nonce_base_c2s'), c2s.nonceBase);
    assert.deepEqual(v('nonce_base_s2c'), okm.subarray(68, 72));
    const s2c = { key: okm.subarray(32, 64), nonceBase: okm.subarray(68, 72) };
    assert.deepEqual(v('proof_plaintext'), Buffer.from('30000000000000000000', 'hex'));
    assert.deepEqual(
      openFrame(c2s, 0n, v('proof_frame')),
      Buffer.concat([Buffer.of(0), v('proof_plaintext')]),
    );
    assert.deepEqual(openFrame(c2s, 1n, v('keepalive_frame')), Buffer.from('0030000000000000000001', 'hex'));
    // IncomingConn: stream_id = conn_id; tunnel_id u32 | family u8 | src[4] | src_port u16 | dst[4] | dst_port u16.
    const inc = v('incoming_conn_plaintext');
    assert.deepEqual(inc.subarray(0, 6), Buffer.from('20000000002a', 'hex'));
    assert.deepEqual(
      inc.subarray(6),
      Buffer.from('00000001' + '04' + 'cb007109' + 'c738' + 'c6336401' + '1f90', 'hex'),
    );
    assert.deepEqual(openFrame(s2c, 0n, v('incoming_conn_frame')), Buffer.concat([Buffer.of(0), inc]));
  });

  test('every frame in the page decodes back to its message with FrameDecoder', () => {
    for (const block of blocks.filter(
      (b) => b.name.startsWith('stored-frame') || b.name.startsWith('decode-frame'),
    )) {
      const v = hexMap(block);
      const m = new Map(block.entries);
      const decoder = new FrameDecoder(decodeMessage);
      decoder.setKeys({ key: v('key'), nonceBase: v('nonce_base') }, BigInt(m.get('counter')!));
      decoder.push(v('frame'));
      assert.deepEqual(decoder.next(), messageFromJson(m.get('message')!), block.name);
      assert.equal(decoder.buffered, 0);
    }
    const clear = byName('cleartext-frame');
    const decoder = new FrameDecoder(decodeMessage);
    decoder.push(hexMap(clear)('frame'));
    assert.deepEqual(decoder.next(), messageFromJson(new Map(clear.entries).get('message')!));
  });

  test('the compressed vector really is codec 1 with a u32 LE size prefix', () => {
    const v = hexMap(byName('decode-frame'));
    const body = v('body');
    assert.equal(body[0], 1);
    assert.equal(body.readUInt32LE(1), v('plaintext').length);
    assert.ok(
      v('frame').length < v('plaintext').length,
      'the compressed frame is smaller than its plaintext',
    );
  });

  test('the zstd vector really is codec 2: a u32 LE size prefix, then one zstd frame', () => {
    const v = hexMap(byName('decode-frame--zstd'));
    const body = v('body');
    assert.equal(body[0], 2);
    assert.equal(body.readUInt32LE(1), v('plaintext').length);
    assert.equal(body.subarray(5, 9).toString('hex'), '28b52ffd', 'the zstd magic number');
    assert.deepEqual(zstdDecompressSync(body.subarray(5)), v('plaintext'), 'node:zlib reads the frame');
    // The same plaintext as the LZ4 vector, so the two can be compared byte by byte.
    assert.deepEqual(v('plaintext'), hexMap(byName('decode-frame'))('plaintext'));
  });
});
