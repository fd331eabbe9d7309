/** Number and time formatting for the dashboard, and peer text made safe to show. */
import { escapeControls } from '../../util/escape.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${UNITS[i]}`;
}

/** Bytes per second -> "12 KiB/s". */
export function formatRate(n: number): string {
  return `${formatBytes(Math.round(n))}/s`;
}

/**
 * A rate limit in the units people write them in ("10MB/s" is 10,000,000 bytes per second): powers of
 * 1000, so 10_000_000 -> "10 MB/s" and 524_288 -> "524 kB/s".
 */
export function formatLimitRate(n: number): string {
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = i === 0 || v >= 100 || Number.isInteger(v) ? 0 : v < 10 ? 2 : 1;
  return `${Number(v.toFixed(digits))} ${units[i]}`;
}

/** A wall-clock time as HH:MM:SS in the user's locale. */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

/** Seconds -> "1 h 2 min", "3 min", "12 s". */
export function formatDuration(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Milliseconds -> "850 ms", "12 s", "3 min". */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : formatDuration(ms / 1000);
}

/**
 * Text that came from a peer or a file (a server's message, an error, a visitor's address): control
 * and bidi characters shown as escapes, so they cannot reorder or hide what the page says.
 */
export function peer(text: string): string {
  return escapeControls(text);
}
