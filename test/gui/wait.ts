/** Bounded waits for tests. */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Resolves with the file's text once `pred` accepts it; re-checks on every change in its folder. */
export function waitForFile(
  path: string,
  pred: (text: string) => boolean,
  timeoutMs = 5000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let done = false;
    const watcher = watch(dirname(path), () => void check());
    const timer = setTimeout(
      () => finish(new Error(`${path} did not reach the expected content in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const finish = (err: Error | undefined, text?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve(text!);
    };
    const check = async () => {
      try {
        const text = await readFile(path, 'utf8');
        if (pred(text)) finish(undefined, text);
      } catch {
        // mid-rename or not there yet: the next event re-checks
      }
    };
    void check();
  });
}

/** Runs `attempt` until it returns true, pausing `everyMs` between tries; fails after timeoutMs. */
export async function retryUntil(
  what: string,
  attempt: () => Promise<boolean>,
  timeoutMs = 5000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await attempt())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
