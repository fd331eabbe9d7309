import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPortRanges, IdentityError, parsePortRanges, portAllowed } from '../../src/identity/index.js';

test('parsePortRanges accepts ports, ranges, star and spaces', () => {
  assert.deepEqual(parsePortRanges('10000-10100,2222'), [
    { low: 10000, high: 10100 },
    { low: 2222, high: 2222 },
  ]);
  assert.deepEqual(parsePortRanges(' 80 , 443 - 444 '), [
    { low: 80, high: 80 },
    { low: 443, high: 444 },
  ]);
  assert.deepEqual(parsePortRanges('*'), [{ low: 1, high: 65535 }]);
  assert.deepEqual(parsePortRanges('1-65535'), [{ low: 1, high: 65535 }]);
});

test('parsePortRanges names the bad part', () => {
  const cases: [string, RegExp][] = [
    ['10000-10100,abc', /"abc" in port list "10000-10100,abc" is not a port or range/],
    ['', /empty entry/],
    ['80,,81', /empty entry/],
    ['0', /port 0 in "0" is out of range/],
    ['65536', /port 65536 .* out of range/],
    ['100-50', /"100-50" starts above its end; .*\(50-100\)/],
    ['8080-', /"8080-" .* not a port or range/],
    ['-5', /"-5" .* not a port or range/],
    ['1e3', /"1e3"/],
    ['123456', /"123456"/],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(
      () => parsePortRanges(input),
      (error: unknown) =>
        error instanceof IdentityError && error.code === 'ERR_PORT_RANGE' && pattern.test(error.message),
      input,
    );
  }
});

test('portAllowed checks inclusive bounds', () => {
  const ranges = parsePortRanges('10000-10100,2222');
  assert.equal(portAllowed(10000, ranges), true);
  assert.equal(portAllowed(10100, ranges), true);
  assert.equal(portAllowed(2222, ranges), true);
  assert.equal(portAllowed(9999, ranges), false);
  assert.equal(portAllowed(10101, ranges), false);
  assert.equal(portAllowed(2222, []), false);
});

test('formatPortRanges inverts parsePortRanges', () => {
  assert.equal(formatPortRanges(parsePortRanges('2222,10000-10100,*')), '2222,10000-10100,*');
});
