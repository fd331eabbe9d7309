/**
 * A logger that rate-limits repeated lines, for paths a peer can trigger at will (a refused
 * connection, a bad handshake): one warn line per refusal let a flood write 200,000 lines in 21 s.
 *
 * Lines are grouped by level and message (not by fields, so the same refusal from a thousand source
 * addresses is one group). In each interval the first `burst` lines of a group pass through; the rest
 * are counted, and when the interval ends the group writes one summary line: the message with
 * ` (N more in the last S s)`, the fields of the last line held back, and `repeated: N`,
 * `intervalSeconds: S`. Nothing is lost silently and nothing is delayed except those summaries.
 *
 * Memory is bounded: at most `maxGroups` groups are tracked; lines of further messages share one
 * overflow group whose summary says "log lines" instead of a message. The summary timer is unref'd
 * (it never keeps a process alive); call flush() before exit to write pending summaries at once, and
 * close() to stop the timer.
 *
 * @example
 * const refusals = rateLimitedLogger(log, { intervalMs: 10_000, burst: 5 });
 * refusals.warn('refused a connection: too many handshakes from one address', { peer });
 * // on shutdown:
 * refusals.close();
 */
import type { LogFields, Logger, LogLevel } from './logger.js';

/** Clock and timer, injectable so tests need no sleeps. */
export interface LimiterClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options of rateLimitedLogger. */
export interface RateLimitOptions {
  /** Length of one interval in milliseconds; default 10,000. */
  intervalMs?: number;
  /** Lines of one group that pass per interval before counting starts; default 5. */
  burst?: number;
  /** Groups tracked at most; default 1,000. */
  maxGroups?: number;
  clock?: LimiterClock;
}

/** A Logger whose repeated lines are rate-limited (see the file header). */
export interface RateLimitedLogger extends Logger {
  /** Writes a summary for every group that held lines back, now. */
  flush(): void;
  /** flush(), then stop the summary timer; lines logged afterwards still pass, limited. */
  close(): void;
  /** Lines held back so far, in total (for tests and metrics). */
  readonly suppressedTotal: number;
}

/** Default interval of rateLimitedLogger. */
export const DEFAULT_LOG_RATE_INTERVAL_MS = 10_000;
/** Default burst of rateLimitedLogger. */
export const DEFAULT_LOG_RATE_BURST = 5;
const DEFAULT_MAX_GROUPS = 1000;
const OVERFLOW = '\u0000overflow';

interface Group {
  level: LogLevel;
  msg: string;
  windowStart: number;
  passed: number;
  suppressed: number;
  lastFields: LogFields | undefined;
  /** The logger (child) of the last held-back line, so its summary carries the same base fields. */
  lastLog: Logger;
}

const systemClock: LimiterClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Wraps `log` so that lines repeated within an interval are counted into one summary line. */
export function rateLimitedLogger(log: Logger, options: RateLimitOptions = {}): RateLimitedLogger {
  const intervalMs = options.intervalMs ?? DEFAULT_LOG_RATE_INTERVAL_MS;
  const burst = options.burst ?? DEFAULT_LOG_RATE_BURST;
  const maxGroups = options.maxGroups ?? DEFAULT_MAX_GROUPS;
  const clock = options.clock ?? systemClock;
  if (!(intervalMs > 0) || !Number.isInteger(burst) || burst < 0 || !(maxGroups >= 1)) {
    throw new RangeError('rateLimitedLogger: intervalMs > 0, burst >= 0 and maxGroups >= 1 are required');
  }
  const groups = new Map<string, Group>();
  let timer: unknown;
  let suppressedTotal = 0;
  let lastSweep = Number.NEGATIVE_INFINITY;

  const summarize = (g: Group) => {
    if (g.suppressed === 0) return;
    const seconds = Math.round(intervalMs / 100) / 10;
    const what = g.msg === OVERFLOW ? 'log lines of other messages' : g.msg;
    const text =
      g.msg === OVERFLOW
        ? `${g.suppressed} ${what} held back in the last ${seconds} s`
        : `${what} (${g.suppressed} more in the last ${seconds} s)`;
    g.lastLog[g.level](text, { ...g.lastFields, repeated: g.suppressed, intervalSeconds: seconds });
    g.suppressed = 0;
    g.lastFields = undefined;
  };

  const tick = () => {
    timer = undefined;
    const now = clock.now();
    for (const [key, g] of groups) {
      if (now - g.windowStart < intervalMs) continue;
      summarize(g);
      // A quiet group is forgotten, so groups come and go with the traffic and memory stays bounded.
      if (g.passed === 0) groups.delete(key);
      else {
        g.windowStart = now;
        g.passed = 0;
      }
    }
    schedule();
  };

  const schedule = () => {
    if (timer !== undefined) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const g of groups.values()) if (g.suppressed > 0) earliest = Math.min(earliest, g.windowStart);
    if (earliest === Number.POSITIVE_INFINITY) return;
    const handle = clock.setTimeout(tick, Math.max(0, earliest + intervalMs - clock.now()));
    (handle as { unref?: () => unknown }).unref?.();
    timer = handle;
  };

  const write = (target: Logger, level: LogLevel, msg: string, fields: LogFields | undefined) => {
    if (!target.isLevelEnabled(level)) return;
    let key = `${level}\u0000${msg}`;
    let g = groups.get(key);
    const now = clock.now();
    if (g === undefined && groups.size >= maxGroups && now - lastSweep >= intervalMs) {
      // Full: forget groups whose interval ended (their summaries go out now), at most once per interval.
      lastSweep = now;
      for (const [k, old] of groups) {
        if (now - old.windowStart < intervalMs) continue;
        summarize(old);
        groups.delete(k);
      }
    }
    if (g === undefined && groups.size >= maxGroups) {
      key = `${level}\u0000${OVERFLOW}`;
      g = groups.get(key);
    }
    if (g === undefined) {
      g = {
        level,
        msg: key.endsWith(OVERFLOW) ? OVERFLOW : msg,
        windowStart: now,
        passed: 0,
        suppressed: 0,
        lastFields: undefined,
        lastLog: target,
      };
      groups.set(key, g);
    } else if (now - g.windowStart >= intervalMs) {
      summarize(g);
      g.windowStart = now;
      g.passed = 0;
    }
    if (g.passed < burst) {
      g.passed += 1;
      target[level](msg, fields);
      return;
    }
    g.suppressed += 1;
    suppressedTotal += 1;
    g.lastFields = g.msg === OVERFLOW ? undefined : fields;
    g.lastLog = target;
    schedule();
  };

  const make = (target: Logger): Logger => ({
    debug: (m, f) => write(target, 'debug', m, f),
    info: (m, f) => write(target, 'info', m, f),
    warn: (m, f) => write(target, 'warn', m, f),
    error: (m, f) => write(target, 'error', m, f),
    // Children share the groups: the same message from two children is still one group.
    child: (fields) => make(target.child(fields)),
    isLevelEnabled: (level) => target.isLevelEnabled(level),
  });

  const flush = () => {
    for (const g of groups.values()) summarize(g);
  };
  return {
    ...make(log),
    flush,
    close() {
      flush();
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
    get suppressedTotal() {
      return suppressedTotal;
    },
  };
}
