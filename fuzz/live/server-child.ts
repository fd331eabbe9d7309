/**
 * The server under test, in its own process so that a crash shows as an exit (with its stderr) and
 * its memory is its own. It runs startServer with the shipped limits and a debug logger whose lines
 * are counted and dropped (so every log line a hostile peer causes is still formatted). It answers
 * the campaign over IPC: 'stats' (after a GC) and 'stop'.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity } from '../../src/identity/index.js';
import { startServer } from '../../src/server/index.js';
import { createLogger } from '../../src/util/logger.js';

/** What the campaign passes (argv[2], JSON). */
export interface ChildConfig {
  dir: string;
  /** The allow-list's lines. */
  allowed: string;
  /** Ports clients may open (default 1024-65535). */
  allowPorts?: { low: number; high: number };
  format: 'json' | 'pretty';
}

/** IPC replies. */
export type ChildMessage =
  | { type: 'ready'; port: number; publicKeyLine: string }
  | {
      type: 'stats';
      rss: number;
      heapUsed: number;
      external: number;
      arrayBuffers: number;
      maxRss: number;
      logLines: number;
      logBytes: number;
    };

const cfg = JSON.parse(process.argv[2]!) as ChildConfig;
const allowedKeysPath = join(cfg.dir, 'allowed_keys');
writeFileSync(allowedKeysPath, `${cfg.allowed}\n`, { mode: 0o600 });
let logLines = 0;
let logBytes = 0;
const server = await startServer({
  host: '127.0.0.1',
  port: 0,
  identity: generateIdentity('fuzz-server'),
  allowedKeysPath,
  publicHost: '127.0.0.1',
  allowPorts: [cfg.allowPorts ?? { low: 1024, high: 65535 }],
  log: createLogger({
    level: 'debug',
    format: cfg.format,
    write: (line) => {
      logLines++;
      logBytes += line.length;
    },
  }),
});
/** VmHWM of this process. getrusage's maxRSS would do, but on Linux it keeps the high-water mark
 * of the parent it was forked from (across exec), so it reports the campaign's memory, not ours. */
function peakRss(): number {
  try {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {
    // Not Linux.
  }
  return process.resourceUsage().maxRSS * 1024;
}

const send = (m: ChildMessage) => process.send?.(m);
send({ type: 'ready', port: server.address.port, publicKeyLine: server.publicKeyLine });
process.on('message', (m: { type: string; gc?: boolean }) => {
  if (m.type === 'stats') {
    if (m.gc !== false) (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    send({
      type: 'stats',
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      maxRss: peakRss(),
      logLines,
      logBytes,
    });
  } else if (m.type === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
