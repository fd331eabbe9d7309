/** One wrong field: where it is and what is wrong with it, in words a user knows. */
export interface FieldIssue {
  /** The field path ("tunnels[0].remotePort", "remotePort") or flag ("--allow-ports"). */
  field: string;
  message: string;
}

/** A user's configuration mistake: the message names the field or flag and the fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Every wrong field found (one or more); `field` is the first of them. */
  readonly issues: readonly FieldIssue[];
  constructor(
    message: string,
    /**
     * The field path ("tunnels[0].remotePort"), tunnel field ("localHost") or flag ("--allow-ports")
     * at fault. Always set, so callers never guess the field from the message text.
     */
    readonly field: string,
    issues?: readonly FieldIssue[],
  ) {
    super(message);
    this.issues = issues && issues.length > 0 ? issues : [{ field, message }];
  }
}
