// npm's "prepare" step. In a clone, `npm ci` (or `npm install`) runs it to build the package. npm also
// runs it during `npm pack` and `npm publish`, right after "prepack" has built the package without
// tests or source maps; building again there would put them back, so it does nothing then. With
// `npm ci --omit=dev` the compiler is not installed: say so instead of failing the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const command = process.env.npm_command;
if (command === 'pack' || command === 'publish') process.exit(0);

try {
  createRequire(import.meta.url).resolve('typescript');
} catch {
  if (!existsSync(new URL('../dist/src/cli/main.js', import.meta.url))) {
    process.stderr.write(
      'minitcptunnel: the development dependencies are not installed, so mtt was not built. ' +
        'Run `npm ci` (with them) to build, or install the package itself: npm install -g minitcptunnel\n',
    );
  }
  process.exit(0);
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['run', 'build'], { stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(r.status ?? 1);
