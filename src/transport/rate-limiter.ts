/**
 * A token bucket for a tunnel's rate limit, shared by all of the tunnel's connections in one
 * direction. Readers take what they read and are told how long to pause: the bucket may go into
 * debt by one read, never drops a byte, and the pause repays the debt, so the long-run rate is the
 * set rate whatever the number of connections. relay() pauses the reading side (backpressure).
 */

/** Tokens the bucket holds at most, in seconds of the rate (and at least MIN_BURST bytes). */
export const RATE_BURST_SECONDS = 0.05;
/** The smallest burst: one socket read. */
export const MIN_BURST = 64 * 1024;

/** Bytes per second, shared. */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #last: number;
  readonly #now: () => number;

  constructor(bytesPerSecond: number, now: () => number = () => performance.now()) {
    if (!(bytesPerSecond > 0)) throw new RangeError('TokenBucket: the rate must be positive');
    this.rate = bytesPerSecond;
    this.burst = Math.max(MIN_BURST, bytesPerSecond * RATE_BURST_SECONDS);
    this.#now = now;
    this.#tokens = this.burst;
    this.#last = now();
  }

  /** Takes `n` bytes; returns the milliseconds the taker should pause (0 when within the rate). */
  take(n: number): number {
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
    this.#last = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.rate);
  }
}

/** A reader's throttle: take() says how long to pause; `paused` is told the time actually asked. */
export interface Throttle {
  take(n: number): number;
}
