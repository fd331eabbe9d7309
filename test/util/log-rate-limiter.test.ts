/** The log-line rate limiter: bursts pass, repeats are counted into one summary line per interval. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LimiterClock, rateLimitedLogger } from '../../src/util/log-rate-limiter.js';
import { createLogger } from '../../src/util/logger.js';

/** A clock that moves only when told to, with its timers. */
class FakeClock implements LimiterClock {
  time = 1_000_000;
  timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number) {
    const t = { at: this.time + ms, fn, live: true };
    this.timers.push(t);
    return t;
  }
  clearTimeout(handle: unknown): void {
    (handle as { live: boolean }).live = false;
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      this.time = next.at;
      next.live = false;
      next.fn();
    }
    this.time = end;
  }
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }
}

function setup(opts: { burst?: number; maxGroups?: number; level?: 'debug' | 'info' | 'warn' } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const base = createLogger({
    level: opts.level ?? 'debug',
    format: 'json',
    write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
  });
  const clock = new FakeClock();
  const log = rateLimitedLogger(base, {
    intervalMs: 10_000,
    burst: opts.burst ?? 3,
    ...(opts.maxGroups ? { maxGroups: opts.maxGroups } : {}),
    clock,
  });
  return { lines, clock, log };
}

test('the first burst lines pass, the rest become one summary line with the count', () => {
  const { lines, clock, log } = setup();
  for (let i = 0; i < 1000; i++) log.warn('refused a connection', { peer: `10.0.0.${i % 250}` });
  assert.equal(lines.length, 3);
  assert.deepEqual(
    lines.map((l) => l.peer),
    ['10.0.0.0', '10.0.0.1', '10.0.0.2'],
  );
  assert.equal(log.suppressedTotal, 997);
  clock.advance(9_999);
  assert.equal(lines.length, 3, 'no summary before the interval ends');
  clock.advance(1);
  assert.equal(lines.length, 4);
  const summary = lines[3]!;
  assert.equal(summary.level, 'warn');
  assert.equal(summary.msg, 'refused a connection (997 more in the last 10 s)');
  assert.equal(summary.repeated, 997);
  assert.equal(summary.intervalSeconds, 10);
  assert.equal(summary.peer, '10.0.0.249', 'the summary carries the last held-back line');
  // The next interval starts afresh: a burst passes again.
  for (let i = 0; i < 3; i++) log.warn('refused a connection');
  assert.equal(lines.length, 7);
  assert.equal(clock.pending, 0, 'no timer while nothing is held back');
});

test('different messages and levels are separate groups; fields do not split a group', () => {
  const { lines, clock, log } = setup({ burst: 1 });
  log.warn('a', { x: 1 });
  log.warn('a', { x: 2 });
  log.info('a', { x: 3 });
  log.warn('b');
  log.warn('b');
  log.warn('b');
  assert.deepEqual(
    lines.map((l) => `${l.level} ${l.msg}`),
    ['warn a', 'info a', 'warn b'],
  );
  clock.advance(10_000);
  assert.deepEqual(
    lines.slice(3).map((l) => l.msg),
    ['a (1 more in the last 10 s)', 'b (2 more in the last 10 s)'],
  );
});

test('a quiet stretch writes nothing; a group that only passed lines never writes a summary', () => {
  const { lines, clock, log } = setup();
  log.warn('x');
  log.warn('x');
  clock.advance(60_000);
  assert.equal(lines.length, 2);
  assert.equal(clock.pending, 0);
});

test('a line after the interval ends writes the pending summary first, then passes', () => {
  const { lines, clock, log } = setup({ burst: 1 });
  log.warn('y');
  log.warn('y');
  // The timer would fire at +10 s; a line arriving then (before the timer) must not be lost or reordered.
  clock.time += 10_000;
  log.warn('y', { n: 3 });
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['y', 'y (1 more in the last 10 s)', 'y'],
  );
  clock.advance(10_000);
  assert.equal(lines.length, 3);
});

test('children share the groups and keep their own fields in summaries', () => {
  const { lines, clock, log } = setup({ burst: 1 });
  const a = log.child({ part: 'pre-auth' });
  a.warn('refused');
  log.child({ part: 'other' }).warn('refused');
  a.warn('refused');
  assert.equal(lines.length, 1);
  clock.advance(10_000);
  assert.equal(lines[1]!.msg, 'refused (2 more in the last 10 s)');
  assert.equal(lines[1]!.part, 'pre-auth');
});

test('lines below the level are dropped before counting', () => {
  const { lines, clock, log } = setup({ level: 'warn' });
  for (let i = 0; i < 50; i++) log.debug('noise');
  clock.advance(10_000);
  assert.equal(lines.length, 0);
  assert.equal(log.suppressedTotal, 0);
  assert.equal(log.isLevelEnabled('debug'), false);
});

test('memory is bounded: past maxGroups, new messages share one overflow group', () => {
  const { lines, clock, log } = setup({ burst: 1, maxGroups: 4 });
  for (let i = 0; i < 100; i++) log.warn(`message ${i}`);
  // Four groups pass one line each; the overflow group passes one more and counts the other 95.
  assert.equal(lines.length, 5);
  clock.advance(10_000);
  const summary = lines.at(-1)!;
  assert.equal(summary.msg, '95 log lines of other messages held back in the last 10 s');
  assert.equal(summary.repeated, 95);
  // After the interval the full table is swept, so a new message gets its own group again.
  clock.advance(10_000);
  log.warn('fresh');
  log.warn('fresh');
  clock.advance(10_000);
  assert.equal(lines.at(-1)!.msg, 'fresh (1 more in the last 10 s)');
});

test('flush writes pending summaries at once; close stops the timer', () => {
  const { lines, clock, log } = setup({ burst: 0 });
  log.error('boom');
  log.error('boom');
  assert.equal(lines.length, 0);
  assert.equal(clock.pending, 1);
  log.close();
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.msg, 'boom (2 more in the last 10 s)');
  assert.equal(clock.pending, 0);
  clock.advance(20_000);
  assert.equal(lines.length, 1, 'nothing is written twice');
});

test("the real timer is unref'd and bad options are refused", () => {
  const log = rateLimitedLogger(createLogger({ write: () => {} }), { intervalMs: 3_600_000, burst: 0 });
  log.warn('held');
  // If the timer were ref'd, the test runner would wait an hour; close() also ends it.
  log.close();
  assert.throws(() => rateLimitedLogger(createLogger(), { intervalMs: 0 }), RangeError);
  assert.throws(() => rateLimitedLogger(createLogger(), { burst: -1 }), RangeError);
});
