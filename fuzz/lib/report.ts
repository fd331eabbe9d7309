/** Saving findings and printing the campaign's figures. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Finding } from './runner.js';

/** Writes a finding as JSON; returns its path. */
export function saveFinding(dir: string, f: Finding): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${f.kind}-${f.target}-seed${f.seed}-case${f.index}.json`);
  const body = { ...f, reproduce: `npm run fuzz -- --replay ${relative(process.cwd(), file) || file}` };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

/** A right-aligned table. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** 1234567 -> "1,234,567". */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes as MiB with one decimal. */
export function fmtMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
