/** A user's configuration mistake: the message names the field or flag and the fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** The field path ("tunnels[0].remotePort") or flag ("--allow-ports") at fault, when there is one. */
    readonly field?: string,
  ) {
    super(message);
  }
}
