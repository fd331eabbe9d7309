/** Per-tunnel transfer rates behind the sparklines, sampled on the server at a fixed interval. */
import type { TunnelRates } from '../dashboard-types.js';

/** Per-tunnel byte-rate history, sampled at a fixed interval. */
export class RateHistory {
  #length: number;
  #last = new Map<string, { bytesIn: number; bytesOut: number; at: number }>();
  #history = new Map<string, TunnelRates>();

  constructor(length: number) {
    this.#length = length;
  }

  /** Records one sample; returns true when any rate is or just was non-zero (worth a push). */
  sample(tunnels: readonly { name: string; bytesIn: number; bytesOut: number }[]): boolean {
    const now = performance.now();
    let interesting = false;
    const seen = new Set<string>();
    for (const t of tunnels) {
      seen.add(t.name);
      const last = this.#last.get(t.name);
      this.#last.set(t.name, { bytesIn: t.bytesIn, bytesOut: t.bytesOut, at: now });
      if (last === undefined) continue;
      const secs = Math.max((now - last.at) / 1000, 0.001);
      // A counter that went down means the tunnel was replaced; count that sample as zero.
      const rin = Math.max(0, (t.bytesIn - last.bytesIn) / secs);
      const rout = Math.max(0, (t.bytesOut - last.bytesOut) / secs);
      let h = this.#history.get(t.name);
      if (h === undefined) {
        h = { in: [], out: [] };
        this.#history.set(t.name, h);
      }
      const prevNonZero = (h.in.at(-1) ?? 0) > 0 || (h.out.at(-1) ?? 0) > 0;
      h.in.push(Math.round(rin));
      h.out.push(Math.round(rout));
      if (h.in.length > this.#length) h.in.shift();
      if (h.out.length > this.#length) h.out.shift();
      if (rin > 0 || rout > 0 || prevNonZero) interesting = true;
    }
    for (const name of [...this.#last.keys()]) {
      if (!seen.has(name)) {
        this.#last.delete(name);
        this.#history.delete(name);
      }
    }
    return interesting;
  }

  forTunnels(names: readonly string[]): Record<string, TunnelRates> {
    const out: Record<string, TunnelRates> = {};
    for (const n of names) out[n] = this.#history.get(n) ?? { in: [], out: [] };
    return out;
  }
}
