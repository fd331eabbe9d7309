/** Port-range arithmetic the server needs beyond membership: what a key may open, in one list. */
import type { PortRange } from '../identity/index.js';

/** The ports in both lists, as sorted, merged ranges. */
export function intersectRanges(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  for (const x of merge(a)) {
    for (const y of merge(b)) {
      const low = Math.max(x.low, y.low);
      const high = Math.min(x.high, y.high);
      if (low <= high) out.push({ low, high });
    }
  }
  return merge(out);
}

/** Sorted, with overlapping and adjacent ranges joined. */
export function merge(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((p, q) => p.low - q.low);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.low <= last.high + 1) last.high = Math.max(last.high, r.high);
    else out.push({ low: r.low, high: r.high });
  }
  return out;
}

/** True when every port of `inner` is in `outer`. */
export function rangesWithin(inner: readonly PortRange[], outer: readonly PortRange[]): boolean {
  const both = intersectRanges(inner, outer);
  const a = merge(inner);
  return a.length === both.length && a.every((r, i) => r.low === both[i]!.low && r.high === both[i]!.high);
}
