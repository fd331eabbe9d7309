/** The long-running commands' LZ4 start-up check: refuse to start without LZ4, warn once (at start) on the WASM fallback. */
import { assertLz4Available, fallbackMessage, onLz4Fallback, preloadLz4 } from '../protocol/compression.js';
import type { Logger } from '../util/logger.js';

/** Throws (one clear line) when no LZ4 implementation will be there; logs the fallback warning when it happens. */
export function checkLz4(log: Logger): void {
  assertLz4Available();
  onLz4Fallback((info) =>
    log.warn(fallbackMessage(info), { platform: info.platform, lz4: 'lz4-wasm-nodejs' }),
  );
  // Say so at start: the first compressed frame may come much later (only while a link backs up).
  preloadLz4();
}
