/** What the benchmark tests read from bench/run.js's results file. */

export interface BenchCell {
  status: string;
  reason?: string;
  errors?: string[];
}

/** Every cell that is neither measured ('ok') nor not applicable ('n/a'), as "figure/path: status why". */
export function unmeasuredCells(
  figures: ReadonlyArray<{ id: string; results: Record<string, BenchCell> }>,
): string[] {
  const notOk: string[] = [];
  for (const f of figures) {
    for (const [path, cell] of Object.entries(f.results)) {
      if (cell.status !== 'ok' && cell.status !== 'n/a')
        notOk.push(`${f.id}/${path}: ${cell.status} ${cell.reason ?? cell.errors?.join('; ') ?? ''}`);
    }
  }
  return notOk;
}
