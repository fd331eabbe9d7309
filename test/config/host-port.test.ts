import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  formatAddress,
  formatHostPort,
  hostProblem,
  parseCidr,
  parseIPv4,
  parseIPv6,
} from '../../src/config/host-port.js';

test('IPv4: four numbers from 0 to 255, no leading zeros', () => {
  assert.deepEqual(parseIPv4('192.168.1.20'), [192, 168, 1, 20]);
  for (const bad of [
    '999.999.1.1',
    '256.0.0.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.-4',
    '',
    '1..2.3',
  ]) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
});

test('IPv6 parsing agrees with node:net on valid and near-valid text', () => {
  const samples = [
    '::',
    '::1',
    '1::',
    'fe80::1',
    '2001:db8::8a2e:370:7334',
    '1:2:3:4:5:6:7:8',
    '::ffff:192.0.2.1',
    '1:2:3:4:5:6:1.2.3.4',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    ':::',
    '1:2:3:4:5:6:7',
    '12345::',
    'g::1',
    '::1.2.3',
    '1:2:3:4:5:6:7::',
    '::2:3:4:5:6:7:8',
    // Zone ids: Node dials letters, digits, '-' and '.', not '_' (fuzz seed 1759000498, config-values case 31148).
    'fe80::1%eth0',
    '::1%a-b.c',
    '::123%a-._x',
    '::1%a_b',
  ];
  for (const s of samples) assert.equal(parseIPv6(s) !== undefined, isIPv6(s), s);
  fc.assert(
    fc.property(fc.ipV6(), (a) => {
      assert.ok(parseIPv6(a), a);
    }),
  );
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9a-f:.]{0,24}$/), (s) => {
      assert.equal(parseIPv6(s) !== undefined, isIPv6(s), s);
    }),
  );
  fc.assert(
    fc.property(fc.ipV4(), (a) => {
      assert.ok(parseIPv4(a) && isIPv4(a));
    }),
  );
});

test('hosts: names (with _), dotted quads, IPv6 bare or in brackets', () => {
  for (const ok of [
    'localhost',
    'db.lan',
    'my_service',
    'a-b.example.com',
    'example.com.',
    '10.0.0.1',
    '::1',
    '[::1]',
  ]) {
    assert.equal(hostProblem(ok), undefined, ok);
  }
  const bad: [string, RegExp][] = [
    ['999.999.1.1', /not an IPv4 address/],
    ['-a.example', /not a host name/],
    ['a b', /not a host name/],
    ['[::1', /brackets/],
    ['[db.lan]', /brackets/],
    ['::g', /IPv6/],
    ['', /required/],
    [`${'a'.repeat(64)}.example`, /not a host name/],
  ];
  for (const [host, re] of bad) assert.match(hostProblem(host, 'local host') ?? '', re, host);
});

test('host:port shows IPv6 in brackets', () => {
  assert.equal(formatHostPort('::1', 27800), '[::1]:27800');
  assert.equal(formatHostPort('[::1]', 27800), '[::1]:27800');
  assert.equal(formatHostPort('db.lan', 5432), 'db.lan:5432');
});

test('CIDR blocks: prefix in range, no host bits, a single address is a /32 or /128', () => {
  assert.deepEqual(parseCidr('203.0.113.0/24'), { family: 4, prefix: 24, bytes: [203, 0, 113, 0] });
  assert.equal((parseCidr('198.51.100.7') as { prefix: number }).prefix, 32);
  assert.equal((parseCidr('2001:db8::/32') as { family: number }).family, 6);
  assert.equal((parseCidr('::1') as { prefix: number }).prefix, 128);
  assert.equal(parseCidr('0.0.0.0/0') !== undefined && typeof parseCidr('0.0.0.0/0'), 'object');
  assert.match(parseCidr('10.1.2.3/8') as string, /did you mean 10\.0\.0\.0\/8\?/);
  assert.match(parseCidr('2001:db8::1/32') as string, /did you mean 2001:db8::\/32\?/);
  assert.match(parseCidr('10.0.0.0/40') as string, /from 0 to 32/);
  assert.match(parseCidr('fe80::1%eth0/64') as string, /zone id/);
  assert.match(parseCidr('nope') as string, /not an address/);
});

test('formatAddress writes the shortest IPv6 form', () => {
  assert.equal(formatAddress(parseIPv6('2001:db8:0:0:0:0:0:1')!), '2001:db8::1');
  assert.equal(formatAddress(parseIPv6('::')!), '::');
  assert.equal(formatAddress(parseIPv6('1:0:2:3:4:5:6:7')!), '1:0:2:3:4:5:6:7');
  assert.equal(formatAddress([192, 0, 2, 1]), '192.0.2.1');
});
