/** Key folders made once per bench (key generation is a visible share of a short --quick run). */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Scope } from './procs.js';

/**
 * Returns a function giving a temp folder filled by `make` on first use, the same folder afterwards
 * (or the same failure). The folder is removed when the bench ends, on Ctrl-C and at exit.
 */
export function keyFolder(
  prefix: string,
  make: (dir: string, scope: Scope) => Promise<void>,
): () => Promise<string> {
  let made: Promise<string> | undefined;
  return () => {
    if (!made) {
      const scope = new Scope(`keys-${prefix}`);
      const dir = mkdtempSync(path.join(os.tmpdir(), `mtt-bench-${prefix}-keys-`));
      scope.deferRemove(dir);
      made = make(dir, scope).then(() => dir);
      made.catch(() => {});
    }
    return made;
  };
}
