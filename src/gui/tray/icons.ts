/**
 * Tray icons drawn in code, so no image files or theme are needed: a coloured disc with a white glyph,
 * anti-aliased with signed distances. The glyph differs by state as well as the colour, so the state
 * reads without colour too: two arrows (connected, green), three dots (connecting or reconnecting,
 * amber), an exclamation mark (a problem, red), two bars (stopped or paused, grey). Output is what
 * StatusNotifierItem's IconPixmap wants: ARGB32 in network byte order.
 */

/** What the icon shows. */
export type IconStatus = 'connected' | 'connecting' | 'reconnecting' | 'error' | 'stopped';

/** One pixmap as StatusNotifierItem sends it: [width, height, ARGB32 big-endian bytes]. */
export type IconPixmap = [number, number, Buffer];

/** Sizes offered to the tray host, which picks the closest. */
export const ICON_SIZES = [16, 22, 24, 32, 48, 64] as const;

const COLORS: Record<IconStatus, [number, number, number]> = {
  connected: [0x16, 0xa3, 0x4a],
  connecting: [0xd9, 0x77, 0x06],
  reconnecting: [0xd9, 0x77, 0x06],
  error: [0xdc, 0x26, 0x26],
  stopped: [0x6b, 0x72, 0x80],
};

type Seg = [number, number, number, number];

// Two arrows in unit coordinates: top one pointing right, bottom one pointing left.
const ARROWS: Seg[] = [
  [0.27, 0.38, 0.71, 0.38],
  [0.71, 0.38, 0.58, 0.26],
  [0.71, 0.38, 0.58, 0.5],
  [0.73, 0.62, 0.29, 0.62],
  [0.29, 0.62, 0.42, 0.5],
  [0.29, 0.62, 0.42, 0.74],
];
// Three dots (zero-length strokes drawn thick): "waiting".
const DOTS: Seg[] = [
  [0.28, 0.5, 0.28, 0.5],
  [0.5, 0.5, 0.5, 0.5],
  [0.72, 0.5, 0.72, 0.5],
];
// An exclamation mark: a bar and a dot.
const BANG: Seg[] = [
  [0.5, 0.24, 0.5, 0.56],
  [0.5, 0.75, 0.5, 0.75],
];
// Two bars: "paused" or "stopped".
const BARS: Seg[] = [
  [0.39, 0.3, 0.39, 0.7],
  [0.61, 0.3, 0.61, 0.7],
];

/** The glyph of each state, and how thick its strokes are (in icon widths). */
const GLYPHS: Record<IconStatus, { segs: Seg[]; stroke: number }> = {
  connected: { segs: ARROWS, stroke: 0.085 },
  connecting: { segs: DOTS, stroke: 0.14 },
  reconnecting: { segs: DOTS, stroke: 0.14 },
  error: { segs: BANG, stroke: 0.13 },
  stopped: { segs: BARS, stroke: 0.12 },
};

function distToSegment(px: number, py: number, [ax, ay, bx, by]: Seg): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

const clamp01 = (v: number) => Math.max(0, Math.min(1, v));

/** Renders one square icon of `size` pixels. */
export function renderIcon(status: IconStatus, size: number): IconPixmap {
  const [r, g, b] = COLORS[status];
  const out = Buffer.alloc(size * size * 4);
  const radius = size * 0.47;
  const glyph = GLYPHS[status];
  const stroke = Math.max(1.2, size * glyph.stroke);
  const c = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      // Coverage: 1 inside, 0 outside, linear across one pixel at the edge.
      const disc = clamp01(radius - Math.hypot(px - c, py - c) + 0.5);
      let arrow = 0;
      for (const s of glyph.segs) {
        const d = distToSegment(px / size, py / size, s) * size;
        arrow = Math.max(arrow, clamp01(stroke / 2 - d + 0.5));
      }
      arrow *= disc;
      const a = disc;
      const i = (y * size + x) * 4;
      out[i] = Math.round(a * 255);
      out[i + 1] = Math.round(r + (255 - r) * arrow);
      out[i + 2] = Math.round(g + (255 - g) * arrow);
      out[i + 3] = Math.round(b + (255 - b) * arrow);
    }
  }
  return [size, size, out];
}

const cache = new Map<IconStatus, IconPixmap[]>();

/** Every offered size for a status (cached; they never change). */
export function iconSet(status: IconStatus): IconPixmap[] {
  let set = cache.get(status);
  if (!set) {
    set = ICON_SIZES.map((s) => renderIcon(status, s));
    cache.set(status, set);
  }
  return set;
}
