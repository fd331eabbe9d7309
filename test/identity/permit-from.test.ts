/** The allow-list's permitfrom option: parsed into CIDR blocks; every mistake named with its line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPublicKeyLine, generateIdentity, parseAllowList } from '../../src/identity/index.js';
import { inBlock, visitorPermitted } from '../../src/server/visitor-filter.js';

const key = formatPublicKeyLine(generateIdentity('k').publicRaw, 'k');

test('permitfrom="203.0.113.0/24,2001:db8::/32" gives two blocks; several options add up', () => {
  const [e] = parseAllowList(
    `permitlisten="8080",permitfrom="203.0.113.0/24,2001:db8::/32",permitfrom="192.0.2.7" ${key}\n`,
    'f',
  );
  assert.deepEqual(
    e!.options.permitFrom!.map((b) => [b.family, b.prefix, b.address.toString('hex'), b.text]),
    [
      [4, 24, 'cb007100', '203.0.113.0/24'],
      [6, 32, '20010db8000000000000000000000000', '2001:db8::/32'],
      [4, 32, 'c0000207', '192.0.2.7'],
    ],
  );
  assert.deepEqual(e!.options.permitListen, [{ low: 8080, high: 8080 }]);
});

test('a line without permitfrom allows any visitor', () => {
  const [e] = parseAllowList(`${key}\n`, 'f');
  assert.equal(e!.options.permitFrom, undefined);
});

test('bad permitfrom values are named with their line and the fix', () => {
  const bad = (opt: string) => () => parseAllowList(`# c\n${opt} ${key}\n`, 'allowed_keys');
  assert.throws(
    bad('permitfrom="203.0.113.1/24"'),
    /allowed_keys:2: in permitfrom="203\.0\.113\.1\/24", .*did you mean 203\.0\.113\.0\/24\?/,
  );
  assert.throws(
    bad('permitfrom="nowhere"'),
    /allowed_keys:2: in permitfrom="nowhere", "nowhere" is not an address or CIDR block/,
  );
  assert.throws(bad('permitfrom="10.0.0.0/33"'), /allowed_keys:2: .*prefix length must be from 0 to 32/);
  assert.throws(
    bad('permitfrom=""'),
    /allowed_keys:2: permitfrom needs a value; write permitfrom="203\.0\.113\.0\/24/,
  );
  assert.throws(bad('permitfrom'), /allowed_keys:2: permitfrom needs a value/);
  assert.throws(
    bad('permitform="1.2.3.4"'),
    /allowed_keys:2: unknown option "permitform"; the options are permitlisten=.*, permitfrom=.*, maxconnections=.* and ratelimit=/,
  );
});

test('matching: prefixes on and off byte boundaries, families kept apart, mapped IPv4 is IPv4', () => {
  const b = (family: 4 | 6, prefix: number, hex: string) => ({
    family,
    prefix,
    address: Buffer.from(hex, 'hex'),
  });
  assert.ok(inBlock(b(4, 24, 'cb007100'), 4, Buffer.from([203, 0, 113, 255])));
  assert.ok(!inBlock(b(4, 24, 'cb007100'), 4, Buffer.from([203, 0, 114, 0])));
  assert.ok(inBlock(b(4, 20, 'c0a81000'), 4, Buffer.from([192, 168, 31, 1])));
  assert.ok(!inBlock(b(4, 20, 'c0a81000'), 4, Buffer.from([192, 168, 32, 1])));
  assert.ok(inBlock(b(4, 0, '00000000'), 4, Buffer.from([1, 2, 3, 4])));
  const v6 = [b(6, 32, '20010db8000000000000000000000000')];
  assert.ok(visitorPermitted('2001:db8:1::5', v6));
  assert.ok(!visitorPermitted('2001:db9::5', v6));
  assert.ok(!visitorPermitted('203.0.113.5', v6), 'an IPv4 visitor is not in an IPv6 block');
  const v4 = [b(4, 8, '7f000000')];
  assert.ok(visitorPermitted('::ffff:127.0.0.2', v4));
  assert.ok(visitorPermitted('127.9.9.9', v4, undefined), 'undefined lists allow anyone');
  assert.ok(!visitorPermitted('127.0.0.1', v4, []), 'an empty list allows no one');
  assert.ok(!visitorPermitted(undefined, v4), 'a socket without an address is refused');
});

test('maxconnections and ratelimit: the key ceilings, parsed; bad values named with the line', () => {
  const [e] = parseAllowList(`maxconnections="100",ratelimit="10MB/s" ${key}\n`, 'f');
  assert.equal(e!.options.maxConnections, 100);
  assert.equal(e!.options.rateLimit, 10_000_000);
  const [plain] = parseAllowList(`${key}\n`, 'f');
  assert.equal(plain!.options.maxConnections, undefined);
  assert.equal(plain!.options.rateLimit, undefined);
  const bad = (opt: string) => () => parseAllowList(`${opt} ${key}\n`, 'allowed_keys');
  assert.throws(
    bad('maxconnections="0"'),
    /allowed_keys:1: maxconnections="0" is not a whole number from 1 to 4294967295; write maxconnections="100"/,
  );
  assert.throws(bad('maxconnections="ten"'), /allowed_keys:1: maxconnections="ten" is not a whole number/);
  assert.throws(
    bad('ratelimit="fast"'),
    /allowed_keys:1: ratelimit "fast" is not a rate: write a number and a unit per second, e\.g\. 10MB\/s/,
  );
  assert.throws(
    bad('ratelimit="9GB/s"'),
    /allowed_keys:1: ratelimit "9GB\/s" is more than the most mtt can enforce/,
  );
});
