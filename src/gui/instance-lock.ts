/**
 * One `mtt gui` per config file. The lock is a unix socket that the running instance listens on, in a
 * folder only this user can enter: a second instance connects, asks the first to show its window, and
 * exits. A crash cannot leave the lock stale, because a socket nobody listens on refuses connections;
 * the next start sees that and takes the lock over (through an exclusive takeover file, so two starts
 * at once cannot both take it).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, realpath, stat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { configDir } from '../config/files.js';

/** Longest request or answer on the lock socket. */
const MAX_LINE = 4096;
/** A takeover file older than this was left by a crash mid-takeover. */
const STALE_TAKEOVER_MS = 10_000;
/** Time a second instance waits for the first one's answer. */
const ASK_TIMEOUT_MS = 5000;

/** What a second instance may ask the first. */
export type InstanceRequest = { cmd: 'show' };
/** The first instance's answer. */
export interface InstanceAnswer {
  ok: boolean;
  pid: number;
  /** The dashboard origin, to tell the user where it is. */
  origin?: string;
}

/** The lock is ours: we are the instance for this config. */
export interface HeldLock {
  held: true;
  path: string;
  /** Answers requests from later instances. */
  onRequest(handler: (req: InstanceRequest) => InstanceAnswer | Promise<InstanceAnswer>): void;
  release(): Promise<void>;
}

/** Another instance holds the lock; it has been asked to show its window. */
export interface OtherInstance {
  held: false;
  answer: InstanceAnswer;
}

/** The folder for lock sockets: $XDG_RUNTIME_DIR/mtt, else the mtt config folder's run/; 0700. */
export function lockFolder(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'mtt') : join(configDir(), 'run');
}

/** The lock socket of one config file (a hash of its real path; unix socket paths are short). */
export async function lockPathFor(configPath: string, folder = lockFolder()): Promise<string> {
  let real = resolve(configPath);
  try {
    real = await realpath(real);
  } catch {
    // not there yet (first run): its absolute path names it
  }
  const id = createHash('sha256').update(real).digest('hex').slice(0, 20);
  return join(folder, `gui-${id}.sock`);
}

function listen(path: string): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolvePromise(server);
    });
  });
}

/** Connects and asks; resolves with the answer, or undefined when nobody listens. */
function ask(path: string, req: InstanceRequest): Promise<InstanceAnswer | undefined> {
  return new Promise((resolvePromise, reject) => {
    const socket: Socket = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`another mtt gui holds ${path} but did not answer within ${ASK_TIMEOUT_MS} ms`));
    }, ASK_TIMEOUT_MS);
    socket.once('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0 || buf.length > MAX_LINE) {
        clearTimeout(timer);
        socket.destroy();
        try {
          resolvePromise(JSON.parse(buf.slice(0, nl)) as InstanceAnswer);
        } catch {
          reject(new Error(`another mtt gui holds ${path} but answered nonsense`));
        }
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolvePromise(undefined);
      else reject(err);
    });
  });
}

/**
 * Takes the lock for `path`, or asks the instance that holds it to show its window. Never leaves a
 * second instance running and never refuses to start because of a dead one.
 */
export async function acquireInstanceLock(path: string): Promise<HeldLock | OtherInstance> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  // The folder guards the socket: nobody else may enter it.
  const st = await stat(folder);
  if ((st.mode & 0o077) !== 0 || (process.getuid && st.uid !== process.getuid())) {
    throw new Error(`${folder} must belong to you and be closed to others (chmod 700 ${folder})`);
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      return await held(path, await listen(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
    const answer = await ask(path, { cmd: 'show' });
    if (answer) return { held: false, answer };
    // Nobody listens: a crash left the socket. Take it over, one starter at a time.
    const takeover = `${path}.takeover`;
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(takeover, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(takeover).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > STALE_TAKEOVER_MS) await unlink(takeover).catch(() => {});
      else await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    try {
      // Someone may have taken it over while we looked: only a socket that still refuses goes.
      if ((await ask(path, { cmd: 'show' }).catch(() => undefined)) === undefined) {
        await unlink(path).catch(() => {});
        return await held(path, await listen(path));
      }
    } finally {
      await handle.close();
      await unlink(takeover).catch(() => {});
    }
  }
  throw new Error(`could not take the instance lock ${path}`);
}

async function held(path: string, server: Server): Promise<HeldLock> {
  // Remember which socket file is ours, so releasing never removes a successor's.
  const ino = (await stat(path)).ino;
  let handler: ((req: InstanceRequest) => InstanceAnswer | Promise<InstanceAnswer>) | undefined;
  server.on('connection', (socket) => {
    socket.setEncoding('utf8');
    let buf = '';
    socket.setTimeout(ASK_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('data', (c: string) => {
      buf += c;
      if (buf.length > MAX_LINE) return void socket.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: InstanceRequest | undefined;
      try {
        const parsed = JSON.parse(buf.slice(0, nl)) as { cmd?: unknown };
        if (parsed.cmd === 'show') req = { cmd: 'show' };
      } catch {
        req = undefined;
      }
      if (!req || !handler) {
        socket.end(`${JSON.stringify({ ok: false, pid: process.pid })}\n`);
        return;
      }
      Promise.resolve(handler(req))
        .catch(() => ({ ok: false, pid: process.pid }))
        .then((a) => socket.end(`${JSON.stringify(a)}\n`));
    });
  });
  return {
    held: true,
    path,
    onRequest: (h) => {
      handler = h;
    },
    release: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      if ((await stat(path).catch(() => undefined))?.ino === ino) await unlink(path).catch(() => {});
    },
  };
}
