/**
 * PROXY protocol headers byte for byte against the HAProxy specification ("The PROXY protocol,
 * versions 1 & 2", doc/proxy-protocol.txt): its version 1 example line, and version 2 headers
 * assembled from the spec's fixed parts (the 12-byte signature, ver_cmd 0x21, 0x11 = TCP over IPv4
 * with a 12-byte address block, 0x21 = TCP over IPv6 with 36 bytes) for the same connections.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROXY_V2_SIGNATURE, proxyHeader } from '../../src/client/proxy-protocol.js';
import { addressToWire } from '../../src/transport/addresses.js';

const ends = (src: string, srcPort: number, dst: string, dstPort: number) => {
  const s = addressToWire(src)!;
  const d = addressToWire(dst)!;
  return { family: s.family, srcAddr: s.bytes, srcPort, dstAddr: d.bytes, dstPort };
};

test('v1: the specification example line, exactly', () => {
  assert.equal(
    proxyHeader('v1', ends('192.168.0.1', 56324, '192.168.0.11', 443)).toString('latin1'),
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n',
  );
});

test('v1: IPv6 in its compressed form; the longest line fits the 104 bytes the spec allows', () => {
  assert.equal(
    proxyHeader('v1', ends('2001:db8::1', 50000, '2001:db8::2', 443)).toString('latin1'),
    'PROXY TCP6 2001:db8::1 2001:db8::2 50000 443\r\n',
  );
  const max = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const line = proxyHeader('v1', ends(max, 65535, max, 65535));
  assert.equal(line.toString('latin1'), `PROXY TCP6 ${max} ${max} 65535 65535\r\n`);
  assert.equal(line.length, 104);
});

test('v2: the signature and the 13-byte version-2 prefix the spec gives receivers to detect', () => {
  assert.equal(PROXY_V2_SIGNATURE.toString('hex'), '0d0a0d0a000d0a515549540a');
  const h = proxyHeader('v2', ends('192.168.0.1', 56324, '192.168.0.11', 443));
  assert.equal(h.subarray(0, 13).toString('hex'), '0d0a0d0a000d0a515549540a21');
});

test('v2: TCP over IPv4, byte for byte (len 12: src, dst, sport, dport)', () => {
  const h = proxyHeader('v2', ends('192.168.0.1', 56324, '192.168.0.11', 443));
  assert.equal(
    h.toString('hex'),
    '0d0a0d0a000d0a515549540a' + // signature
      '21' + // version 2, PROXY
      '11' + // AF_INET, STREAM
      '000c' + // 12 address bytes follow
      'c0a80001' + // 192.168.0.1
      'c0a8000b' + // 192.168.0.11
      'dc04' + // 56324
      '01bb', // 443
  );
  assert.equal(h.length, 16 + 12);
});

test('v2: TCP over IPv6, byte for byte (len 36)', () => {
  const h = proxyHeader('v2', ends('2001:db8::1', 50000, '::1', 8080));
  assert.equal(
    h.toString('hex'),
    '0d0a0d0a000d0a515549540a' +
      '21' +
      '21' + // AF_INET6, STREAM
      '0024' + // 36
      '20010db8000000000000000000000001' +
      '00000000000000000000000000000001' +
      'c350' +
      '1f90',
  );
});

test('an IPv4-mapped visitor (dual-stack listener) is TCP4, as the wire sends it', () => {
  assert.equal(
    proxyHeader('v1', ends('::ffff:127.0.0.2', 40000, '::ffff:127.0.0.1', 8080)).toString('latin1'),
    'PROXY TCP4 127.0.0.2 127.0.0.1 40000 8080\r\n',
  );
});

test('addresses of the wrong length are refused, not written', () => {
  assert.throws(
    () =>
      proxyHeader('v2', {
        family: 4,
        srcAddr: Buffer.alloc(16),
        srcPort: 1,
        dstAddr: Buffer.alloc(4),
        dstPort: 2,
      }),
    /IPv4 addresses must be 4 bytes/,
  );
});
