/**
 * A small structured logger: JSON lines (one object per line) when the output is not a terminal,
 * short human-readable lines with a local date and time on a terminal. Fields named like secrets
 * print as MASKED. Control characters never reach the output raw: pretty lines escape them
 * (escapeControls), JSON lines write DEL, C1 and bidi controls as \uNNNN (JSON already escapes C0).
 */
import { escapeControls, escapeJsonControls } from './escape.js';

/** Log levels, in increasing order of importance. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /secret|token|private|password|key_?material/i;

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** What the rest of the code logs through. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

/** Options for createLogger. */
export interface LoggerOptions {
  level?: LogLevel;
  /** 'json' or 'pretty'; by default pretty on a TTY, JSON otherwise. */
  format?: 'json' | 'pretty';
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  /** Fields on every line. */
  base?: LogFields;
}

function clean(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (SECRET_FIELD.test(k)) out[k] = 'MASKED';
    else if (v instanceof Error) out[k] = v.message;
    else if (Buffer.isBuffer(v)) out[k] = `<${v.length} bytes>`;
    else if (typeof v === 'bigint') out[k] = String(v);
    else out[k] = v;
  }
  return out;
}

/** `2026-12-01 21:05:09.123` in local time: a terminal reader wants the day too (logs span midnight). */
function localTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

function prettyValue(v: unknown): string {
  if (typeof v === 'string') {
    const safe = escapeControls(v);
    return safe !== '' && !/[\s"=]/.test(safe) ? safe : `"${safe.replaceAll('"', '\\"')}"`;
  }
  return escapeJsonControls(JSON.stringify(v) ?? String(v));
}

function pretty(level: LogLevel, msg: string, fields: LogFields): string {
  const extra = Object.entries(fields)
    .map(([k, v]) => `${escapeControls(k)}=${prettyValue(v)}`)
    .join(' ');
  return `${localTimestamp(new Date())} ${level.toUpperCase().padEnd(5)} ${escapeControls(msg)}${extra ? `  ${extra}` : ''}`;
}

/** Creates a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const format = options.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const make = (base: LogFields): Logger => {
    const log = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (ORDER[level] < min) return;
      const all = clean({ ...base, ...fields });
      write(
        format === 'json'
          ? escapeJsonControls(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }))
          : pretty(level, msg, all),
      );
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
      isLevelEnabled: (level) => ORDER[level] >= min,
    };
  };
  return make(options.base ?? {});
}

/** A logger that drops everything (library default). */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => {} });
