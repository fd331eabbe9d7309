/**
 * A worker thread running one target's cases. It writes its progress to shared memory so the main
 * thread can see a case that never returns (a synchronous infinite loop cannot report itself),
 * terminate the worker and record the case as a hang.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { targetByName } from '../targets/index.js';
import { signatureOf } from './outcome.js';
import { Rng } from './rng.js';
import { type Finding, findingOf, runCase } from './runner.js';

/** What the main thread sends. */
export interface WorkerTask {
  target: string;
  seed: number;
  start: number;
  /** Number of cases, or undefined to run until `deadline`. */
  count: number | undefined;
  /** Epoch ms after which no new case starts. */
  deadline: number | undefined;
  /** Int32 [cases done, index of the running case - start, 1 when finished]. */
  progress: SharedArrayBuffer;
  /** Findings of one signature posted in full; later ones are only counted. */
  keepPerSignature: number;
  /** Heap growth (bytes, after GC) that counts as a leak. */
  leakBytes: number;
}

/** What the worker sends back at the end. */
export interface WorkerResult {
  type: 'done';
  cases: number;
  maxCaseMs: number;
  totalMs: number;
  heapGrowth: number | undefined;
  repeats: Record<string, number>;
}

const LEAK_WARMUP = 2000;
const RSS_SOFT_LIMIT = 768 * 2 ** 20;

async function main(): Promise<void> {
  const task = workerData as WorkerTask;
  const progress = new Int32Array(task.progress);
  const target = targetByName(task.target);
  try {
    await target.setup?.();
  } catch (err) {
    // Self-checks and key pools are the campaign's own: the target cannot run, and that is not mtt's.
    const f = findingOf(target.name, task.seed, -1, null, err);
    parentPort!.postMessage({
      type: 'finding',
      finding: { ...f, kind: 'harness', signature: `setup ${signatureOf('harness', err)}` },
    });
    Atomics.store(progress, 2, 1);
    const none: WorkerResult = {
      type: 'done',
      cases: 0,
      maxCaseMs: 0,
      totalMs: 0,
      heapGrowth: undefined,
      repeats: {},
    };
    parentPort!.postMessage(none);
    return;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  const seen = new Map<string, number>();
  let maxCaseMs = 0;
  let heapStart: number | undefined;
  const t0 = Date.now();
  let done = 0;
  for (let i = 0; ; i++) {
    if (task.count !== undefined && i >= task.count) break;
    if (task.deadline !== undefined && (i & 15) === 0 && Date.now() >= task.deadline) break;
    const index = task.start + i;
    Atomics.store(progress, 1, i);
    let input: unknown;
    try {
      input = target.generate(Rng.forCase(task.seed, target.name, index));
    } catch (err) {
      // A generator must not throw: whatever it throws is the harness's bug. Reported (the run
      // fails), not as a finding in mtt, and the campaign goes on.
      const f = findingOf(target.name, task.seed, index, null, err);
      f.kind = 'harness';
      f.signature = `generator ${signatureOf('harness', err)}`;
      if ((seen.get(f.signature) ?? 0) < task.keepPerSignature)
        parentPort!.postMessage({ type: 'finding', finding: f });
      seen.set(f.signature, (seen.get(f.signature) ?? 0) + 1);
      done = i + 1;
      Atomics.store(progress, 0, done);
      continue;
    }
    const { error, ms } = await runCase(target, input);
    if (ms > maxCaseMs) maxCaseMs = ms;
    if (error !== undefined) {
      const f = findingOf(target.name, task.seed, index, input, error);
      const n = (seen.get(f.signature) ?? 0) + 1;
      seen.set(f.signature, n);
      if (n <= task.keepPerSignature) parentPort!.postMessage({ type: 'finding', finding: f });
    }
    done = i + 1;
    Atomics.store(progress, 0, done);
    // Big frames leave external garbage that V8 collects lazily; keep the campaign's own RSS modest
    // on a shared machine.
    if (gc && (done & 31) === 0 && process.memoryUsage.rss() > RSS_SOFT_LIMIT) gc();
    if (done === LEAK_WARMUP && gc) {
      gc();
      heapStart = process.memoryUsage().heapUsed;
    }
  }
  let heapGrowth: number | undefined;
  if (gc && heapStart !== undefined) {
    gc();
    heapGrowth = process.memoryUsage().heapUsed - heapStart;
    if (heapGrowth > task.leakBytes) {
      const f: Finding = {
        kind: 'leak',
        target: target.name,
        seed: task.seed,
        index: task.start + done - 1,
        signature: `leak ${target.name}`,
        error: `heap grew by ${(heapGrowth / 2 ** 20).toFixed(1)} MiB after GC over ${done - LEAK_WARMUP} cases`,
        stack: '',
        input: null,
      };
      parentPort!.postMessage({ type: 'finding', finding: f });
    }
  }
  const repeats: Record<string, number> = {};
  for (const [sig, n] of seen) if (n > task.keepPerSignature) repeats[sig] = n - task.keepPerSignature;
  Atomics.store(progress, 2, 1);
  const result: WorkerResult = {
    type: 'done',
    cases: done,
    maxCaseMs,
    totalMs: Date.now() - t0,
    heapGrowth,
    repeats,
  };
  parentPort!.postMessage(result);
}

void main();
