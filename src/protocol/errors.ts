/**
 * Coded protocol errors. The codec and the handshake throw only these, so a caller can tell a peer's
 * bad bytes (close that one connection) from a bug (which would be any other exception).
 */

/** Stable error codes; never renumbered or reworded, tests and logs match on them. */
export type ProtocolErrorCode =
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_TOO_SMALL'
  | 'ERR_DECRYPT'
  | 'ERR_DECOMPRESS'
  | 'ERR_DECOMPRESSED_TOO_LARGE'
  | 'ERR_UNKNOWN_CODEC'
  | 'ERR_MALFORMED'
  | 'ERR_UNKNOWN_TYPE'
  | 'ERR_UNEXPECTED_MESSAGE'
  | 'ERR_NONCE_EXHAUSTED'
  | 'ERR_VERSION_MISMATCH'
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_SERVER_KEY_MISMATCH'
  | 'ERR_WEAK_KEY'
  | 'ERR_AUTH_FAILED'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_TRUNCATED'
  | 'ERR_IDLE_TIMEOUT'
  | 'ERR_CLOSED';

/** An error caused by what a peer sent (or failed to send), with a stable code. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for errors that a peer's input caused, as opposed to bugs. */
export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}

/** The server refused this client (AuthFail), with the reason from the wire. */
export class AuthRejectedError extends ProtocolError {
  constructor(
    readonly reason: string,
    message: string,
    readonly serverVersion: number,
  ) {
    super('ERR_AUTH_FAILED', message);
  }
}
