/** The token bucket behind a tunnel's rate limit, on a clock the test moves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MIN_BURST, TokenBucket } from '../../src/transport/rate-limiter.js';

test('within the burst nothing waits; beyond it the wait repays the debt at the rate', () => {
  let now = 0;
  const b = new TokenBucket(1_000_000, () => now);
  assert.equal(b.burst, MIN_BURST);
  assert.equal(b.take(MIN_BURST), 0);
  // 100 kB of debt at 1 MB/s: 100 ms.
  assert.equal(b.take(100_000), 100);
  now += 100;
  // Repaid; the next read starts a new debt of its own size.
  assert.equal(b.take(10_000), 10);
});

test('readers sharing a bucket get the rate between them, not each', () => {
  const now = 0;
  const b = new TokenBucket(1_000_000, () => now);
  b.take(b.burst);
  // Eight readers of 64 KiB each: the last one waits for all eight.
  const waits = Array.from({ length: 8 }, () => b.take(65_536));
  assert.deepEqual(
    waits,
    waits.map((_, i) => Math.ceil(((i + 1) * 65_536 * 1000) / 1_000_000)),
  );
});

test('idle time refills up to the burst only; a big rate has a burst of 50 ms of it', () => {
  let now = 0;
  const b = new TokenBucket(100_000_000, () => now);
  assert.equal(b.burst, 5_000_000);
  b.take(5_000_000);
  now += 10_000;
  assert.equal(b.take(5_000_000), 0);
  assert.ok(b.take(1_000_000) > 0, 'ten idle seconds did not bank ten seconds of tokens');
  assert.throws(() => new TokenBucket(0), /rate must be positive/);
});
