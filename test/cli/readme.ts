/** Pieces of README.md that tests run as they stand, so the README cannot drift from what works. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** README.md of this checkout. */
export const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The first ```LANG block after `<!-- MARKER -->` in the README. */
export async function readmeBlock(marker: string, lang = 'sh', readmePath = README): Promise<string> {
  const readme = await readFile(readmePath, 'utf8');
  const at = readme.indexOf(`<!-- ${marker} -->`);
  assert.ok(at >= 0, `README.md has a <!-- ${marker} --> marker`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\\n\`\`\``).exec(readme.slice(at));
  assert.ok(m, `a \`\`\`${lang} block follows <!-- ${marker} -->`);
  return m[1]!;
}
