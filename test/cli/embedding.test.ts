/**
 * The README's embedding example runs as it stands: it is taken from the README, written inside the
 * package (so `minitcptunnel/…` resolves to this build through the package's own "exports") and run
 * as a child process. The packaging system test runs it again against the installed tarball.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../e2e/harness.js';
import { readmeBlock } from './readme.js';

const ROOT = new URL('../../../', import.meta.url);

test("the README's embedding example serves a request through a tunnel and exits", async (t) => {
  const file = fileURLToPath(new URL(`dist/embedding-example-${process.pid}.mjs`, ROOT));
  await writeFile(file, await readmeBlock('embedding-example', 'js'));
  t.after(() => rm(file, { force: true }));
  const port = await freePort();
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>(
    (resolve) => {
      execFile(
        process.execPath,
        [file],
        { env: { ...process.env, PUBLIC_PORT: String(port) }, timeout: 20_000 },
        (err, out, errOut) => resolve({ stdout: out, stderr: errOut, code: err ? Number(err.code ?? 1) : 0 }),
      );
    },
  );
  // Exit 0: it ended by itself (close() released every handle); the 20 s timeout would kill it.
  assert.equal(code, 0, stderr);
  assert.equal(stdout, 'hello through mtt\n\n');
});
