/**
 * Watches one socket's write side and says whether the link, not the CPU, is what limits it: the
 * signal the frame encoder's `auto` compression follows (docs/PROTOCOL.md, "Sender's compression
 * policy"). Compressing pays only when bytes wait for the link: then fewer bytes on the wire are more
 * data per second. When the kernel takes every frame at once, LZ4 would only cost CPU time.
 *
 * The socket "backs up" when a write leaves bytes in Node's buffer (the kernel's send buffer is
 * full). It counts as backed up for at least LINK_MEMORY_FRAMES frames and a memory time after that.
 * Compressed frames may fit a link that raw ones overflow, so the backlog can vanish *because* the
 * frames are compressed: when storing again backs the socket up sooner than the memory time, storing
 * was the wrong guess, and the memory doubles (up to MAX_LINK_MEMORY_MS); a long stretch of stored
 * frames that the link takes at once sets it back to LINK_MEMORY_MS.
 *
 * Pure: the clock is injected, so the decisions can be tested without timing anything.
 */
import type { LinkState } from '../protocol/frame-codec.js';

/** After the socket last backed up, keep counting it as link-bound for at least this many frames… */
export const LINK_MEMORY_FRAMES = 64;
/** …and for at least this long (ms), whichever lasts longer; doubled while storing keeps failing. */
export const LINK_MEMORY_MS = 1_000;
/** The longest the memory grows to. */
export const MAX_LINK_MEMORY_MS = 16_000;

/** The write side of one socket, seen through its backlog. */
export class LinkMonitor implements LinkState {
  readonly #now: () => number;
  #lastBackloggedAt = Number.NEGATIVE_INFINITY;
  #framesSince = LINK_MEMORY_FRAMES;
  #memoryMs = LINK_MEMORY_MS;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Told after each frame's write, with the socket's writableLength then. */
  wrote(backlogAfter: number): void {
    if (backlogAfter > 0) {
      const t = this.#now();
      if (!this.linkBound()) {
        // We were storing: a backlog soon after shows the link is still the bottleneck.
        const storedFor = t - (this.#lastBackloggedAt + this.#memoryMs);
        this.#memoryMs =
          storedFor < this.#memoryMs ? Math.min(MAX_LINK_MEMORY_MS, 2 * this.#memoryMs) : LINK_MEMORY_MS;
      }
      this.#lastBackloggedAt = t;
      this.#framesSince = 0;
    } else if (this.#framesSince < LINK_MEMORY_FRAMES) {
      this.#framesSince += 1;
    }
  }

  /** How long the socket counts as backed up after its last backlog now (ms). */
  get memoryMs(): number {
    return this.#memoryMs;
  }

  /** True while the socket backed up lately (LINK_MEMORY_FRAMES frames, or the memory time). */
  linkBound(): boolean {
    return this.#framesSince < LINK_MEMORY_FRAMES || this.#now() - this.#lastBackloggedAt < this.#memoryMs;
  }
}
