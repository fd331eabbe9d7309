/**
 * Logging and output modes of every command. One rule: on a terminal (stderr is a TTY) mtt writes
 * human lines; otherwise JSON lines, all on stderr. `--log-format json|pretty` overrides the guess.
 * In JSON mode the long-running commands' start-up banner is one JSON log line instead of text on
 * stdout, and errors (a user's mistake, --exit-on-failure's last error) are JSON log lines too.
 */
import { ConfigError } from '../config/config-error.js';
import { escapeControls } from '../util/escape.js';
import { createLogger, type LogFields, type Logger, type LogLevel } from '../util/logger.js';

/** The two output formats. */
export type LogFormat = 'json' | 'pretty';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** The format a command uses: the --log-format value, else pretty on a terminal and JSON otherwise. */
export function resolveLogFormat(flag: unknown): LogFormat {
  if (flag === 'json' || flag === 'pretty') return flag;
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/** A command's logger and whether its output is for a person (pretty) or a machine (JSON). */
export interface Logging {
  log: Logger;
  format: LogFormat;
  /**
   * The start-up banner: `text` on stdout for a person; in JSON mode one info line `msg` with
   * `fields` on the log stream instead. Peer- or file-supplied parts of `text` are escaped here.
   */
  banner(text: string, msg: string, fields: LogFields): void;
}

/** A logger from --log-level and --log-format (validated: a wrong value names the flag). */
export function makeLogging(values: Record<string, unknown>, defaultLevel: LogLevel = 'info'): Logging {
  const level = (values['log-level'] as string | undefined) ?? defaultLevel;
  if (!LEVELS.includes(level as LogLevel)) {
    throw new ConfigError(`--log-level must be debug, info, warn or error, not "${level}"`, '--log-level');
  }
  const flag = values['log-format'] as string | undefined;
  if (flag !== undefined && flag !== 'json' && flag !== 'pretty') {
    throw new ConfigError(`--log-format must be json or pretty, not "${flag}"`, '--log-format');
  }
  const format = resolveLogFormat(flag);
  const log = createLogger({ level: level as LogLevel, format });
  return {
    log,
    format,
    banner(text, msg, fields) {
      // The banner is what a person needs to see, so it is not subject to --log-level in JSON mode.
      if (format === 'pretty') process.stdout.write(escapeControls(text, { keepNewlines: true }));
      else createLogger({ level: 'info', format: 'json' }).info(msg, fields);
    },
  };
}

/** A logger from --log-level and --log-format. */
export function makeLogger(values: Record<string, unknown>): Logger {
  return makeLogging(values).log;
}
