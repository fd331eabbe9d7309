/**
 * Frames that closed a connection, counted by the error's code, process-wide: the source of
 * `mtt_frame_errors_total{reason}` on both ends. FramedConnection reports every ProtocolError its
 * decoder throws (frame size, AEAD, decompression, a malformed or unexpected message, a version
 * mismatch) and a stream that ended inside a frame: one place, so no path is counted twice.
 */
import type { ProtocolError } from '../protocol/errors.js';

const counts = new Map<string, number>();

/** The metric's reason label for an error code: `ERR_FRAME_TOO_LARGE` -> `frame_too_large`. */
export function frameErrorReason(code: string): string {
  return code.replace(/^ERR_/, '').toLowerCase();
}

/** Counts one frame error (called by FramedConnection). */
export function countFrameError(err: ProtocolError): void {
  const reason = frameErrorReason(err.code);
  counts.set(reason, (counts.get(reason) ?? 0) + 1);
}

/** Frame errors so far, by reason. */
export function frameErrorCounts(): ReadonlyMap<string, number> {
  return counts;
}
