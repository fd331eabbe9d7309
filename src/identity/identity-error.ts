/** Stable codes for every identity-layer failure; callers branch on these, never on messages. */
export type IdentityErrorCode =
  /** A private key file (or allow-list) can be read or changed by other users. */
  | 'ERR_KEY_PERMISSIONS'
  /** A key file or public key line is not in a format mtt reads. */
  | 'ERR_KEY_FORMAT'
  /** A private key is protected by a passphrase. */
  | 'ERR_KEY_ENCRYPTED'
  /** keygen would overwrite an existing key file. */
  | 'ERR_KEY_EXISTS'
  /** The private key file does not exist. */
  | 'ERR_KEY_MISSING'
  /** A file exists but cannot be read (permissions, not a regular file, too large). */
  | 'ERR_FILE_ACCESS'
  /** A line of the allow-list is malformed, uses an unknown option, or repeats a key. */
  | 'ERR_ALLOWLIST_SYNTAX'
  /** A port list such as "10000-10100,2222" is malformed. */
  | 'ERR_PORT_RANGE'
  /** A line of the known-servers file is malformed. */
  | 'ERR_KNOWN_SERVERS_SYNTAX'
  /** The known-servers file already pins the server to a different key. */
  | 'ERR_KNOWN_SERVER_MISMATCH';

/** A user-facing identity error: `message` is one line naming the problem and the fix; print it as is. */
export class IdentityError extends Error {
  /** Stable machine-readable code. */
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityError';
    this.code = code;
  }
}
