/**
 * Port lists such as "10000-10100,2222": the server's --allow-ports flag and the allow-list's permitlisten.
 */
import { IdentityError } from './identity-error.js';

/** An inclusive range of TCP ports, 1 <= low <= high <= 65535. */
export interface PortRange {
  /** First port in the range. */
  low: number;
  /** Last port in the range (equal to low for a single port). */
  high: number;
}

/** Every port: what "*" means. */
export const ANY_PORT: PortRange = Object.freeze({ low: 1, high: 65535 });

/** Parse "8080", "10000-10100", "*" or a comma-separated list of them; throws ERR_PORT_RANGE naming the bad part. */
export function parsePortRanges(text: string): PortRange[] {
  const ranges: PortRange[] = [];
  const fix = 'write ports like 8080, ranges like 10000-10100, or * for any, separated by commas';
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') {
      throw new IdentityError('ERR_PORT_RANGE', `port list "${text}" has an empty entry; ${fix}`);
    }
    if (part === '*') {
      ranges.push({ ...ANY_PORT });
      continue;
    }
    const match = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(part);
    if (match === null) {
      throw new IdentityError(
        'ERR_PORT_RANGE',
        `"${part}" in port list "${text}" is not a port or range; ${fix}`,
      );
    }
    const low = Number(match[1]);
    const high = match[2] === undefined ? low : Number(match[2]);
    for (const port of [low, high]) {
      if (port < 1 || port > 65535) {
        throw new IdentityError(
          'ERR_PORT_RANGE',
          `port ${port} in "${part}" is out of range; ports are 1 to 65535`,
        );
      }
    }
    if (low > high) {
      throw new IdentityError(
        'ERR_PORT_RANGE',
        `range "${part}" starts above its end; write the lower port first (${high}-${low})`,
      );
    }
    ranges.push({ low, high });
  }
  return ranges;
}

/** True when `port` lies in at least one of `ranges`. */
export function portAllowed(port: number, ranges: readonly PortRange[]): boolean {
  return ranges.some((range) => port >= range.low && port <= range.high);
}

/** Format ranges back as text, e.g. "2222,10000-10100" ("*" for the full range). */
export function formatPortRanges(ranges: readonly PortRange[]): string {
  return ranges
    .map((r) =>
      r.low === ANY_PORT.low && r.high === ANY_PORT.high
        ? '*'
        : r.low === r.high
          ? `${r.low}`
          : `${r.low}-${r.high}`,
    )
    .join(',');
}
