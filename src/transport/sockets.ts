/** Small socket helpers both ends share: dialing with a deadline, and an abortive close. */
import { connect, type Socket } from 'node:net';

/** Opens a TCP connection with TCP_NODELAY and half-close allowed; rejects on error or timeout. */
export function dialTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        Object.assign(new Error(`connecting to ${host}:${port} timed out after ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Closes a socket abortively (an RST), so its peer learns at once that it will not be served. */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  // A socket still connecting has nothing to reset. While a shutdown (our FIN) is still in flight,
  // libuv refuses the reset (EINVAL), and Node then leaves the handle open for good: an fd leak,
  // and a process that spins at exit. Such a socket is destroyed instead (it has sent its FIN).
  if (socket.readyState === 'opening' || (socket.writableEnded && !socket.writableFinished)) socket.destroy();
  else socket.resetAndDestroy();
}

/**
 * Dials like dialTcp, but starts a fresh attempt every `staggerMs` while none has connected, and takes
 * the first that does: after a partition heals, a new SYN goes out within `staggerMs` instead of
 * waiting for the kernel's next retransmission of an old one (1, 3, 7 s …).
 */
export function dialStaggered(
  host: string,
  port: number,
  timeoutMs: number,
  staggerMs: number,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set<Promise<Socket>>();
    let done = false;
    let lastError: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    const attempt = () => {
      timer = undefined;
      if (done) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      const p = dialTcp(host, port, left);
      pending.add(p);
      p.then(
        (socket) => {
          pending.delete(p);
          if (done) {
            socket.destroy();
            return;
          }
          done = true;
          if (timer) clearTimeout(timer);
          resolve(socket);
        },
        (err: Error) => {
          pending.delete(p);
          lastError = err;
          // A refusal is an answer: nobody listens, and more SYNs now will not change that.
          if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' || Date.now() >= deadline) finish();
          else if (pending.size === 0 && !timer) finish();
        },
      );
      if (deadline - Date.now() > staggerMs) timer = setTimeout(attempt, staggerMs);
    };
    const finish = () => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      reject(lastError ?? new Error(`connecting to ${host}:${port} failed`));
    };
    attempt();
  });
}
