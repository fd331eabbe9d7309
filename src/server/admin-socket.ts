/**
 * The server's admin socket: a Unix socket, mode 0600, that `mtt status` asks for the server's
 * status. There is no network listener; the file's mode (and its folder's) is the access control.
 *
 * Created with care: its folder must belong to this user (or root) and be closed to writes by
 * others, so nobody can swap the file under us; a symlink or any other file at the path is refused,
 * never followed or removed; a socket left by a crashed server is removed only when nothing answers
 * on it (a live or frozen server keeps it). The socket is bound with a umask that gives it 0600 from
 * the start, and removed on close only if it is still ours (same inode).
 *
 * What it accepts is bounded: one request line of at most MAX_ADMIN_REQUEST bytes per connection,
 * within ADMIN_REQUEST_TIMEOUT_MS, and at most MAX_ADMIN_CLIENTS connections at once. The protocol is
 * one JSON line each way: `{"cmd":"status"}` → `{"ok":true,"status":{…}}` (or `{"ok":false,"error":…}`).
 */
import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../util/logger.js';

/** Longest request line accepted, in bytes. */
export const MAX_ADMIN_REQUEST = 1024;
/** Time a connection has to send its request. */
export const ADMIN_REQUEST_TIMEOUT_MS = 2000;
/** Admin connections served at once; more are told "busy" and closed. */
export const MAX_ADMIN_CLIENTS = 4;
/** Longest Unix socket path (sun_path is 108 bytes with its NUL on Linux). */
export const MAX_SOCKET_PATH = 107;
/** Mode of the socket file. */
export const ADMIN_SOCKET_MODE = 0o600;

/** A request on the admin socket. */
export type AdminRequest = { cmd: 'status' };
/** An answer on the admin socket. */
export type AdminAnswer = { ok: true; status: unknown } | { ok: false; error: string };

/** Why the admin socket could not be opened; the message names the path and the fix. */
export class AdminSocketError extends Error {
  override readonly name = 'AdminSocketError';
  readonly code: 'ERR_ADMIN_SOCKET_IN_USE' | 'ERR_ADMIN_SOCKET_UNSAFE';
  constructor(code: AdminSocketError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** An open admin socket. */
export interface AdminSocket {
  readonly path: string;
  /** Stops listening, ends open admin connections and removes the socket file if it is still ours. */
  close(): Promise<void>;
}

/** What the admin socket is opened with. */
export interface AdminSocketOptions {
  path: string;
  /** The status snapshot (a JSON value). */
  status(): unknown;
  log: Logger;
}

/**
 * Whether something listens on the socket at `path`: 'answers' (a connection was accepted),
 * 'refused' (a socket nobody listens on), 'absent' (no such file), or an error code (EACCES, …).
 */
export function probeSocket(
  path: string,
  timeoutMs = 1000,
): Promise<'answers' | 'refused' | 'absent' | string> {
  return new Promise((resolve) => {
    const s: Socket = connect(path);
    const done = (r: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    // A frozen server's socket still accepts (the kernel's backlog): that counts as answering.
    const timer = setTimeout(() => done('answers'), timeoutMs);
    s.once('connect', () => done('answers'));
    s.once('error', (err: NodeJS.ErrnoException) =>
      done(
        err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ENOENT' ? 'absent' : (err.code ?? 'error'),
      ),
    );
  });
}

/** The folder guard: ours or root's, and nobody else may write in it. */
async function checkFolder(folder: string): Promise<void> {
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const st = await stat(folder);
  const uid = process.getuid?.();
  if (!st.isDirectory()) {
    throw new AdminSocketError(
      'ERR_ADMIN_SOCKET_UNSAFE',
      `${folder} is not a folder; choose another --admin-socket`,
    );
  }
  if ((st.mode & 0o022) !== 0 || (uid !== undefined && st.uid !== uid && st.uid !== 0)) {
    throw new AdminSocketError(
      'ERR_ADMIN_SOCKET_UNSAFE',
      `the admin socket's folder ${folder} can be written by other users, who could replace the socket: ` +
        `put it in a folder only this user can write (chmod go-w ${folder}), or pass another --admin-socket`,
    );
  }
}

/** Binds `path` with a umask that makes the socket 0600 at once (bind() happens inside listen()). */
function bind(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    // process.umask() throws in a worker thread; there the chmod after bind alone sets the mode.
    let old: number | undefined;
    try {
      old = process.umask(0o177);
    } catch {
      old = undefined;
    }
    try {
      server.listen({ path, exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (old !== undefined) process.umask(old);
    }
  });
}

/** Opens the admin socket at `opts.path` (see the file header). */
export async function openAdminSocket(opts: AdminSocketOptions): Promise<AdminSocket> {
  const { path, log } = opts;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new AdminSocketError(
      'ERR_ADMIN_SOCKET_UNSAFE',
      `the admin socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes (a Unix socket limit); pass a shorter --admin-socket`,
    );
  }
  await checkFolder(dirname(path));
  // Every connection (destroyed on close), and those being served (bounded by MAX_ADMIN_CLIENTS).
  const all = new Set<Socket>();
  const clients = new Set<Socket>();
  const server = createServer((socket) => {
    all.add(socket);
    socket.once('close', () => all.delete(socket));
    serve(socket, clients, opts);
  });
  for (let attempt = 0; ; attempt++) {
    const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st?.isSymbolicLink()) {
      throw new AdminSocketError(
        'ERR_ADMIN_SOCKET_UNSAFE',
        `${path} is a symbolic link; mtt does not follow it: remove it or pass another --admin-socket`,
      );
    }
    if (st && !st.isSocket()) {
      throw new AdminSocketError(
        'ERR_ADMIN_SOCKET_UNSAFE',
        `${path} exists and is not a socket; remove it or pass another --admin-socket`,
      );
    }
    if (st) {
      const probe = await probeSocket(path);
      if (probe === 'answers') {
        throw new AdminSocketError(
          'ERR_ADMIN_SOCKET_IN_USE',
          `another mtt server answers on its admin socket ${path}; stop it, or pass another --admin-socket`,
        );
      }
      if (probe !== 'refused' && probe !== 'absent') {
        throw new AdminSocketError(
          'ERR_ADMIN_SOCKET_UNSAFE',
          `cannot tell whether a server still uses ${path} (${probe}); remove it if none does, or pass another --admin-socket`,
        );
      }
      // Left by a server that died: remove it, but only the very file we probed.
      const again = await lstat(path).catch(() => undefined);
      if (again && again.ino === st.ino && again.isSocket()) {
        await unlink(path).catch(() => {});
        log.info('removed a stale admin socket', { path });
      }
    }
    try {
      await bind(server, path);
      break;
    } catch (err) {
      // Someone bound it between our look and our bind: look again (a few times).
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 3) throw err;
    }
  }
  // The folder is guarded, so the file chmod() reaches is the socket we just bound.
  await chmod(path, ADMIN_SOCKET_MODE);
  const mine = await lstat(path);
  if (!mine.isSocket() || (mine.mode & 0o777) !== ADMIN_SOCKET_MODE) {
    server.close();
    throw new AdminSocketError(
      'ERR_ADMIN_SOCKET_UNSAFE',
      `the admin socket ${path} did not come out as a socket with mode 0600; pass another --admin-socket`,
    );
  }
  server.on('error', (err) => log.error('admin socket error', { path, error: err }));
  log.debug('admin socket listening', { path });
  let closing: Promise<void> | undefined;
  return {
    path,
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const c of all) c.destroy();
        await closed;
        // libuv removes the file on close; if it did not, remove it, unless another server's is there now.
        const now = await lstat(path).catch(() => undefined);
        if (now?.ino === mine.ino) await unlink(path).catch(() => {});
      })();
      return closing;
    },
  };
}

/** One admin connection: a bounded request line, one answer, then close. */
function serve(socket: Socket, clients: Set<Socket>, opts: AdminSocketOptions): void {
  socket.on('error', () => {});
  // Whatever happens, the connection is gone within the timeout; after the answer, input is discarded
  // (read, so the peer's end is seen and the socket closes).
  socket.setTimeout(ADMIN_REQUEST_TIMEOUT_MS, () => socket.destroy());
  const answer = (a: AdminAnswer) => {
    socket.resume();
    socket.end(`${JSON.stringify(a)}\n`);
  };
  if (clients.size >= MAX_ADMIN_CLIENTS) {
    answer({ ok: false, error: `busy: ${MAX_ADMIN_CLIENTS} admin connections are open; try again` });
    return;
  }
  clients.add(socket);
  socket.once('close', () => clients.delete(socket));
  let buf = Buffer.alloc(0);
  let answered = false;
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    const nl = buf.indexOf(0x0a);
    if (nl < 0 && buf.length <= MAX_ADMIN_REQUEST) return;
    socket.off('data', onData);
    answered = true;
    if (nl < 0 || nl > MAX_ADMIN_REQUEST) {
      answer({ ok: false, error: `the request is longer than ${MAX_ADMIN_REQUEST} bytes` });
      return;
    }
    let req: unknown;
    try {
      req = JSON.parse(buf.subarray(0, nl).toString('utf8'));
    } catch {
      answer({ ok: false, error: 'the request is not a JSON line' });
      return;
    }
    const cmd = (req as { cmd?: unknown } | null)?.cmd;
    if (cmd !== 'status') {
      answer({ ok: false, error: 'unknown command: the admin socket answers {"cmd":"status"}' });
      return;
    }
    try {
      answer({ ok: true, status: opts.status() });
    } catch (err) {
      opts.log.error('admin status failed', { error: err as Error });
      answer({ ok: false, error: 'the server could not build its status; see its log' });
    }
  };
  socket.on('data', onData);
  socket.once('end', () => {
    if (!answered) socket.end();
  });
}
