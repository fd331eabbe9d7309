/**
 * The message layer on its own: every record of the message table round-trips, decodes only what its
 * sender may send, and refuses malformed payloads with a coded ProtocolError.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_PAYLOAD, MAX_STRING_LEN, MAX_TUNNEL_NAME_LEN } from '../../src/protocol/limits.js';
import {
  decodeClientMessage,
  decodeDataHeader,
  decodeMessage,
  decodeServerMessage,
  encodeMessage,
  MsgType,
} from '../../src/protocol/messages.js';
import { ALL_TYPE_CODES, sampleMessages, throwsCode } from './fixtures.js';

describe('messages', () => {
  test('the samples cover every type code', () => {
    const covered = new Set(sampleMessages().map((m) => encodeMessage(m)[0]));
    for (const code of ALL_TYPE_CODES)
      assert.ok(covered.has(code), `no sample of type 0x${code.toString(16)}`);
  });

  test('every message round-trips through encodeMessage/decodeMessage', () => {
    for (const msg of sampleMessages()) {
      const bytes = encodeMessage(msg);
      assert.deepEqual(decodeMessage(bytes), msg, msg.type);
      assert.deepEqual(encodeMessage(decodeMessage(bytes)), bytes, `${msg.type} re-encodes identically`);
    }
  });

  test('direction: each side decodes only what the other side sends', () => {
    const clientOnly = [MsgType.ClientHello, MsgType.ClientAuth, MsgType.DataHello, MsgType.OpenTunnel];
    const serverOnly = [MsgType.ServerHello, MsgType.AuthOk, MsgType.AuthFail, MsgType.IncomingConn];
    for (const msg of sampleMessages()) {
      const bytes = encodeMessage(msg);
      const t = bytes[0]!;
      if (clientOnly.includes(t as never))
        throwsCode(() => decodeServerMessage(bytes), 'ERR_UNEXPECTED_MESSAGE');
      else if (serverOnly.includes(t as never))
        throwsCode(() => decodeClientMessage(bytes), 'ERR_UNEXPECTED_MESSAGE');
    }
    assert.deepEqual(
      decodeClientMessage(encodeMessage({ type: 'Heartbeat', reply: false, seq: 1 })).type,
      'Heartbeat',
    );
    assert.deepEqual(
      decodeServerMessage(encodeMessage({ type: 'Heartbeat', reply: true, seq: 1 })).type,
      'Heartbeat',
    );
    throwsCode(() => decodeClientMessage(Buffer.from('7f0000000000', 'hex')), 'ERR_UNKNOWN_TYPE');
  });

  test('malformed plaintexts are refused with ERR_MALFORMED', () => {
    const ok = encodeMessage({ type: 'Heartbeat', reply: false, seq: 1 });
    throwsCode(() => decodeMessage(ok.subarray(0, 5)), 'ERR_MALFORMED'); // shorter than the header
    throwsCode(() => decodeMessage(ok.subarray(0, 9)), 'ERR_MALFORMED'); // payload ends early
    throwsCode(() => decodeMessage(Buffer.concat([ok, Buffer.of(0)])), 'ERR_MALFORMED'); // trailing byte
    const flags = Buffer.from(ok);
    flags[1] = 0x02; // unknown flag
    throwsCode(() => decodeMessage(flags), 'ERR_MALFORMED');
    const stream = Buffer.from(ok);
    stream.writeUInt32BE(5, 2); // Heartbeat does not use stream_id
    throwsCode(() => decodeMessage(stream), 'ERR_MALFORMED');
    const reason = encodeMessage({ type: 'AuthFail', reason: 'busy', version: 2, message: '' });
    reason[6] = 99; // outside the closed set
    throwsCode(() => decodeMessage(reason), 'ERR_MALFORMED');
    const role = encodeMessage(sampleMessages()[0]!);
    role[8] = 2; // a ClientHello with the server's role
    throwsCode(() => decodeMessage(role), 'ERR_MALFORMED');
    const longName = Buffer.concat([
      Buffer.from('100000000001', 'hex'),
      Buffer.from('1f90', 'hex'),
      Buffer.of(65),
    ]);
    throwsCode(
      () => decodeMessage(Buffer.concat([longName, Buffer.alloc(65, 0x61)])),
      'ERR_MALFORMED', // name over MAX_TUNNEL_NAME_LEN
    );
  });

  test('version 2 fields are bounded and checked: ranges, blocks, families, prefixes', () => {
    const open = (blocks: number, family = 4, prefix = 8) =>
      Buffer.concat([
        Buffer.from('100000000001', 'hex'),
        Buffer.from('1f90', 'hex'),
        Buffer.of(1, 0x61),
        Buffer.alloc(8),
        Buffer.of(blocks),
        ...Array.from({ length: blocks }, () =>
          Buffer.concat([Buffer.of(family, prefix), Buffer.alloc(family === 6 ? 16 : 4)]),
        ),
      ]);
    assert.equal(decodeMessage(open(32)).type, 'OpenTunnel');
    throwsCode(() => decodeMessage(open(33)), 'ERR_MALFORMED'); // more than MAX_PERMIT_FROM
    throwsCode(() => decodeMessage(open(1, 5)), 'ERR_MALFORMED'); // family 5
    throwsCode(() => decodeMessage(open(1, 4, 33)), 'ERR_MALFORMED'); // /33 for IPv4
    assert.equal(decodeMessage(open(1, 6, 128)).type, 'OpenTunnel');
    throwsCode(() => decodeMessage(open(1, 6, 129)), 'ERR_MALFORMED');
    const flagged = open(0);
    const compressOf = (flags: number) => {
      flagged[1] = flags;
      return (decodeMessage(flagged) as { compress: unknown }).compress;
    };
    assert.equal(compressOf(0x00), true);
    assert.equal(compressOf(0x01), false); // NO_COMPRESS
    assert.equal(compressOf(0x02), 'zstd'); // ZSTD
    throwsCode(() => compressOf(0x03), 'ERR_MALFORMED'); // NO_COMPRESS and ZSTD together
    for (const bit of [0x04, 0x08, 0x10, 0x20, 0x40, 0x80])
      throwsCode(() => compressOf(bit), 'ERR_MALFORMED');
    const openMsg = { type: 'OpenTunnel', tunnelId: 1, remotePort: 1, name: 'a' } as const;
    const limits = { maxConnections: 0, rateLimit: 0, permitFrom: [] };
    assert.equal(encodeMessage({ ...openMsg, ...limits, compress: 'zstd' })[1], 0x02);
    assert.equal(encodeMessage({ ...openMsg, ...limits, compress: false })[1], 0x01);
    assert.equal(encodeMessage({ ...openMsg, ...limits, compress: true })[1], 0x00);

    const status = (zstd: boolean) =>
      encodeMessage({
        type: 'TunnelStatus',
        tunnelId: 1,
        state: 'active',
        reason: 'none',
        port: 8080,
        address: '',
        message: '',
        maxConnections: 0,
        rateLimit: 0,
        zstd,
      });
    assert.equal(status(true)[1], 0x01, 'TunnelStatus ZSTD is 0x01');
    assert.equal(status(false)[1], 0x00);
    assert.equal((decodeMessage(status(true)) as { zstd: boolean }).zstd, true);
    assert.equal((decodeMessage(status(false)) as { zstd: boolean }).zstd, false);
    for (const bit of [0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80]) {
      const other = status(true);
      other[1] = bit;
      throwsCode(() => decodeMessage(other), 'ERR_MALFORMED');
    }

    const authOk = (ranges: Array<[number, number]>, count = ranges.length) =>
      Buffer.concat([
        Buffer.from('040000000000', 'hex'),
        Buffer.from('00001388', 'hex'),
        Buffer.from([count >> 8, count & 0xff]),
        ...ranges.map(([lo, hi]) => Buffer.from([lo >> 8, lo & 0xff, hi >> 8, hi & 0xff])),
        Buffer.alloc(8),
      ]);
    assert.deepEqual((decodeMessage(authOk([[1024, 2048]])) as { allowedPorts: unknown }).allowedPorts, [
      { low: 1024, high: 2048 },
    ]);
    throwsCode(() => decodeMessage(authOk([[2048, 1024]])), 'ERR_MALFORMED'); // low above high
    throwsCode(() => decodeMessage(authOk([[0, 10]])), 'ERR_MALFORMED'); // port 0
    throwsCode(() => decodeMessage(authOk([], 257)), 'ERR_MALFORMED'); // more than MAX_AUTH_PORT_RANGES
    throwsCode(() => decodeMessage(authOk([], 3)), 'ERR_MALFORMED'); // count beyond the payload

    const incoming = Buffer.concat([
      Buffer.from('200000000007', 'hex'),
      Buffer.alloc(4),
      Buffer.of(6),
      Buffer.alloc(4 + 2 + 4 + 2),
    ]);
    throwsCode(() => decodeMessage(incoming), 'ERR_MALFORMED'); // family 6 needs 16-byte addresses
    throwsCode(
      () => decodeClientMessage(encodeMessage({ type: 'ChannelsWanted', count: 1 })),
      'ERR_UNEXPECTED_MESSAGE',
    );
    throwsCode(() => decodeMessage(Buffer.from('210000000007', 'hex')), 'ERR_UNKNOWN_TYPE'); // retired DataConnReady
  });

  test('decodeDataHeader: a Data header gives its FIN and payload offset, any other type undefined', () => {
    const fin = encodeMessage({ type: 'Data', fin: true, payload: Buffer.from('ab') });
    assert.deepEqual(decodeDataHeader(fin), { fin: true, payloadOffset: fin.length - 2 });
    assert.deepEqual(
      decodeDataHeader(encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(0) })),
      {
        fin: false,
        payloadOffset: 6,
      },
    );
    assert.equal(decodeDataHeader(encodeMessage({ type: 'Heartbeat', reply: false, seq: 1 })), undefined);
    assert.equal(decodeDataHeader(fin.subarray(0, 5)), undefined);
    const badFlags = Buffer.from(fin);
    badFlags[1] = 0x80;
    throwsCode(() => decodeDataHeader(badFlags), 'ERR_MALFORMED');
    const badStream = Buffer.from(fin);
    badStream.writeUInt32BE(9, 2);
    throwsCode(() => decodeDataHeader(badStream), 'ERR_MALFORMED');
  });

  test('a hello of another version is ERR_VERSION_MISMATCH naming both versions, whatever follows', () => {
    const hello = encodeMessage(sampleMessages()[0]!);
    hello.writeUInt16BE(1, 6);
    const err = throwsCode(() => decodeMessage(hello.subarray(0, 8)), 'ERR_VERSION_MISMATCH');
    assert.match(err.message, /version 1\b.*\b2\b/);
  });

  test('the encoder refuses fields it cannot represent (a bug, not a peer error)', () => {
    assert.throws(
      () =>
        encodeMessage({
          type: 'OpenTunnel',
          tunnelId: 1,
          remotePort: 1,
          name: 'x'.repeat(MAX_TUNNEL_NAME_LEN + 1),
          compress: true,
          maxConnections: 0,
          rateLimit: 0,
          permitFrom: [],
        }),
      RangeError,
    );
    assert.throws(
      () =>
        encodeMessage({ type: 'Error', streamId: 0, code: 'reset', message: 'x'.repeat(MAX_STRING_LEN + 1) }),
      RangeError,
    );
    assert.throws(
      () => encodeMessage({ type: 'Data', fin: false, payload: Buffer.alloc(MAX_PAYLOAD + 1) }),
      RangeError,
    );
    assert.throws(() => encodeMessage({ type: 'ClientAuth', signature: Buffer.alloc(63) }), RangeError);
  });
});
