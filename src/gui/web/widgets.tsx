/** Small shared pieces: copy button, sparkline, status pill, a ticking clock. */
import { useEffect, useState } from 'preact/hooks';
import type { TunnelStatusKind } from '../../client/api.js';

/** Re-renders every `ms` while `active`; for countdowns shown to the user (no server polling). */
export function useNow(active: boolean, ms = 1000): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [active, ms]);
}

/** Copies `text` to the clipboard and says so for a moment. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('copied');
    } catch {
      setDone('failed');
    }
    setTimeout(() => setDone('idle'), 1500);
  };
  return (
    <button type="button" class="btn btn-small" onClick={copy} aria-label={label} title={label}>
      {done === 'copied' ? 'Copied' : done === 'failed' ? 'Select and copy' : 'Copy'}
    </button>
  );
}

/** Two small lines (in and out) over the last samples, scaled to their common maximum. */
export function Sparkline({ rin, rout, label }: { rin: number[]; rout: number[]; label: string }) {
  const w = 120;
  const h = 28;
  const n = Math.max(rin.length, rout.length, 2);
  const max = Math.max(1, ...rin, ...rout);
  const points = (values: number[]) =>
    values
      .map((v, i) => {
        const x = ((i + (n - values.length)) / (n - 1)) * w;
        const y = h - 1 - (v / max) * (h - 2);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(' ');
  return (
    <svg class="sparkline" viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label={label}>
      <line x1="0" y1={h - 0.5} x2={w} y2={h - 0.5} class="spark-base" />
      {rout.length > 1 && <polyline points={points(rout)} class="spark-out" />}
      {rin.length > 1 && <polyline points={points(rin)} class="spark-in" />}
    </svg>
  );
}

const STATUS_TEXT: Record<TunnelStatusKind, string> = {
  active: 'Active',
  opening: 'Opening…',
  error: 'Error',
  disabled: 'Disabled',
};

/** A coloured badge for a tunnel's status. */
export function StatusPill({ status }: { status: TunnelStatusKind }) {
  return (
    <span class={`pill pill-${status}`} data-status={status}>
      <span class="dot" aria-hidden="true" />
      {STATUS_TEXT[status]}
    </span>
  );
}
