/** The events list's folding: a run of the same event (numbers aside) is one line with a count. Pure. */
import type { ClientEvent } from '../client/index.js';

/** Events newest first, with runs of the same event (numbers aside) folded into one line with a count. */
export function collapseEvents(
  events: readonly ClientEvent[],
): { event: ClientEvent; count: number; first: number }[] {
  const out: { event: ClientEvent; count: number; first: number; key: string }[] = [];
  for (const e of [...events].reverse()) {
    const key = `${e.level}|${e.tunnel ?? ''}|${e.message.replace(/\d+/g, '#')}`;
    const last = out.at(-1);
    if (last && last.key === key) {
      last.count++;
      last.first = e.at;
    } else {
      out.push({ event: e, count: 1, first: e.at, key });
    }
  }
  return out;
}
