/** Flags and helpers that the long-running commands share. */
import { ConfigError } from '../config/config-error.js';
import { createLogger, type Logger, type LogLevel } from '../util/logger.js';

/** --log-level and --log-format. */
export const LOG_OPTIONS = {
  'log-level': { type: 'string' as const },
  'log-format': { type: 'string' as const },
};

/** A logger from --log-level and --log-format. */
export function makeLogger(values: Record<string, unknown>): Logger {
  const level = (values['log-level'] as string | undefined) ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    throw new ConfigError(`--log-level must be debug, info, warn or error, not "${level}"`, '--log-level');
  }
  const format = values['log-format'] as string | undefined;
  if (format !== undefined && format !== 'json' && format !== 'pretty') {
    throw new ConfigError(`--log-format must be json or pretty, not "${format}"`, '--log-format');
  }
  return createLogger({ level: level as LogLevel, ...(format ? { format } : {}) });
}

/** A --flag given in seconds, as milliseconds. */
export function seconds(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new ConfigError(`${flag} must be a positive number of seconds`, flag);
  return n * 1000;
}
