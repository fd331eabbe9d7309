/** Small shared pieces: copy button, sparkline, status pill, a ticking clock, a switch. */
import { useEffect, useId, useState } from 'preact/hooks';
import type { TunnelStatusKind } from '../../client/index.js';
import { formatRate } from './format.js';

/** Re-renders every `ms` while `active`; for countdowns shown to the user (no server polling). */
export function useNow(active: boolean, ms = 1000): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [active, ms]);
}

/** Copies `text` to the clipboard and says so for a moment (announced politely). */
export function CopyButton({
  text,
  label,
  visible = 'Copy',
}: {
  text: string;
  label: string;
  visible?: string;
}) {
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
  // The accessible name starts with the visible text, so speech users can say what they see.
  return (
    <button type="button" class="btn btn-small" onClick={copy} aria-label={`${visible}: ${label}`}>
      <span aria-live="polite">
        {done === 'copied' ? 'Copied' : done === 'failed' ? 'Select and copy' : visible}
      </span>
    </button>
  );
}

/**
 * Two lines (to the service, to visitors) over the last samples, on a common scale whose top is
 * labelled, so the picture means something: a flat line at the top is the peak, not "fast".
 */
export function Sparkline(p: { rin: number[]; rout: number[]; name: string; sampleMs: number }) {
  const w = 120;
  const h = 28;
  const n = Math.max(p.rin.length, p.rout.length, 2);
  const peak = Math.max(0, ...p.rin, ...p.rout);
  const max = Math.max(1, peak);
  const points = (values: number[]) =>
    values
      .map((v, i) => {
        const x = ((i + (n - values.length)) / (n - 1)) * w;
        const y = h - 1 - (v / max) * (h - 2);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(' ');
  const span = Math.round(((n - 1) * p.sampleMs) / 1000);
  const label = `Transfer rate of ${p.name} over the last ${span} s; peak ${formatRate(peak)}`;
  return (
    <figure class="spark">
      <svg
        class="sparkline"
        viewBox={`0 0 ${w} ${h}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={label}
      >
        <line x1="0" y1={h - 0.5} x2={w} y2={h - 0.5} class="spark-base" />
        <line x1="0" y1="0.5" x2={w} y2="0.5" class="spark-top" />
        {p.rout.length > 1 && <polyline points={points(p.rout)} class="spark-out" />}
        {p.rin.length > 1 && <polyline points={points(p.rin)} class="spark-in" />}
      </svg>
      <figcaption class="spark-scale" aria-hidden="true">
        <span>top: {formatRate(peak)}</span>
        <span>last {span} s</span>
      </figcaption>
    </figure>
  );
}

const STATUS_TEXT: Record<TunnelStatusKind, string> = {
  active: 'Active',
  opening: 'Opening…',
  error: 'Refused',
  disabled: 'Disabled',
};

/** A badge for a tunnel's status; its shape (a symbol) as well as its colour says it. */
export function StatusPill({ status, localDown }: { status: TunnelStatusKind; localDown?: boolean }) {
  const shown = status === 'active' && localDown ? 'local-down' : status;
  const text = shown === 'local-down' ? 'Local service down' : STATUS_TEXT[status];
  const symbol = { active: '●', opening: '…', error: '!', disabled: '○', 'local-down': '!' }[shown];
  return (
    <span class={`pill pill-${shown}`} data-status={status}>
      <span class="pill-symbol" aria-hidden="true">
        {symbol}
      </span>
      {text}
    </span>
  );
}

/**
 * An on/off switch: a real checkbox with role="switch" (its state is announced as on/off), named by
 * `labelledBy` (e.g. the tunnel's name) plus its visible label, and drawn so forced-colors mode keeps it.
 */
export function Switch(p: {
  checked: boolean;
  labelledBy: string;
  label: string;
  onChange: (checked: boolean) => void;
  disabled?: boolean;
}) {
  const labelId = useId();
  return (
    <label class="switch">
      <input
        type="checkbox"
        role="switch"
        checked={p.checked}
        aria-checked={p.checked}
        disabled={p.disabled}
        aria-labelledby={`${p.labelledBy} ${labelId}`}
        onChange={(e) => p.onChange((e.currentTarget as HTMLInputElement).checked)}
      />
      <span class="slider" aria-hidden="true" />
      <span id={labelId}>{p.label}</span>
    </label>
  );
}
