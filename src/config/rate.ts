/**
 * Transfer rates as people write them ("10MB/s", "512KiB/s", "100Mbit/s") and as the engine uses
 * them (whole bytes per second). Pure, so the config schema and the dashboard share it.
 */
import { ConfigError } from './config-error.js';

/** Bytes per second of one unit; k/M/G are powers of 1000, Ki/Mi/Gi of 1024, bits are an eighth. */
const UNITS: Record<string, number> = {
  'B/s': 1,
  'kB/s': 1e3,
  'KB/s': 1e3,
  'MB/s': 1e6,
  'GB/s': 1e9,
  'KiB/s': 1024,
  'MiB/s': 1024 ** 2,
  'GiB/s': 1024 ** 3,
  'bit/s': 1 / 8,
  'kbit/s': 1e3 / 8,
  'Kbit/s': 1e3 / 8,
  'Mbit/s': 1e6 / 8,
  'Gbit/s': 1e9 / 8,
};

/** The largest rate the wire can carry (u32 bytes per second, about 4.3 GB/s). */
export const MAX_RATE_BYTES_PER_SECOND = 0xffff_ffff;

/** Why `text` is not a rate, or undefined when it is one. `label` names the field for the user. */
export function rateProblem(text: string, label = 'rate limit'): string | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+\/s)$/.exec(text.trim());
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) {
    return `${label} "${text}" is not a rate: write a number and a unit per second, e.g. 10MB/s, 512KiB/s or 100Mbit/s`;
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < 1) return `${label} "${text}" is less than 1 byte per second`;
  if (bytes > MAX_RATE_BYTES_PER_SECOND)
    return `${label} "${text}" is more than the most mtt can enforce (4GB/s)`;
  return undefined;
}

/** "10MB/s" -> 10000000 bytes per second. Throws a ConfigError naming `field` when it is not a rate. */
export function parseRate(text: string, field = 'rateLimit', label = 'rate limit'): number {
  const problem = rateProblem(text, label);
  if (problem) throw new ConfigError(problem, field);
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+\/s)$/.exec(text.trim())!;
  return Math.floor(Number(m[1]) * UNITS[m[2]!]!);
}
