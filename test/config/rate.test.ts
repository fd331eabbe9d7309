import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { parseRate } from '../../src/config/rate.js';

test('parseRate: bytes and bits, decimal and binary prefixes, per second', () => {
  const cases: [string, number][] = [
    ['10MB/s', 10_000_000],
    ['512KiB/s', 512 * 1024],
    ['100Mbit/s', 12_500_000],
    ['1.5 MiB/s', 1_572_864],
    ['64kbit/s', 8000],
    ['1GB/s', 1e9],
    ['800B/s', 800],
    [' 2 KB/s ', 2000],
  ];
  for (const [text, bytes] of cases) assert.equal(parseRate(text), bytes, text);
});

test('parseRate refuses what it cannot be sure of, naming the field and the fix', () => {
  for (const text of ['10MB', '10 mb/s', 'fast', '-1MB/s', '10Mb/s', '1e3B/s', '']) {
    assert.throws(
      () => parseRate(text),
      (e: unknown) => e instanceof ConfigError && e.field === 'rateLimit' && /e\.g\. 10MB\/s/.test(e.message),
      text,
    );
  }
  assert.throws(() => parseRate('0.001B/s'), /less than 1 byte/);
  assert.throws(() => parseRate('40Gbit/s'), /more than the most mtt can enforce/);
});
