/**
 * The Chrome DevTools Protocol over `--remote-debugging-pipe`: the browser reads commands from its
 * fd 3 and writes answers and events to its fd 4, each a JSON text ended by a NUL byte. A pipe, not a
 * debugging port: no other local user (or web page) can reach it. Only what the window needs: send a
 * command, hear events.
 */
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';

/** Time a command waits for its answer. */
export const CDP_CALL_TIMEOUT_MS = 5000;
/** Longest message we accept from the browser (its answers here are a few kilobytes). */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** A CDP error answer, or no answer in time. */
export class CdpError extends Error {}

/** One CDP connection. Emits 'event' (method, params) and 'close'. */
export class CdpPipe extends EventEmitter {
  #out: Writable;
  #buf = '';
  #nextId = 1;
  #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  #closed = false;

  constructor(toBrowser: Writable, fromBrowser: Readable) {
    super();
    this.#out = toBrowser;
    toBrowser.on('error', () => this.#close());
    fromBrowser.setEncoding('utf8');
    fromBrowser.on('data', (chunk: string) => this.#onData(chunk));
    fromBrowser.on('error', () => this.#close());
    fromBrowser.on('close', () => this.#close());
  }

  /** Sends a command and resolves with its result. */
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new CdpError('the browser is gone'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new CdpError(`${method}: no answer within ${CDP_CALL_TIMEOUT_MS} ms`));
      }, CDP_CALL_TIMEOUT_MS);
      timer.unref();
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#out.write(`${JSON.stringify({ id, method, params })}\0`);
    });
  }

  #onData(chunk: string): void {
    this.#buf += chunk;
    if (this.#buf.length > MAX_MESSAGE_BYTES) {
      this.#close();
      return;
    }
    for (let end = this.#buf.indexOf('\0'); end >= 0; end = this.#buf.indexOf('\0')) {
      const text = this.#buf.slice(0, end);
      this.#buf = this.#buf.slice(end + 1);
      let msg: {
        id?: number;
        result?: unknown;
        error?: { message?: string };
        method?: string;
        params?: unknown;
      };
      try {
        msg = JSON.parse(text);
      } catch {
        continue;
      }
      if (typeof msg.id === 'number') {
        const p = this.#pending.get(msg.id);
        if (!p) continue;
        this.#pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.error) p.reject(new CdpError(msg.error.message ?? 'CDP error'));
        else p.resolve(msg.result ?? {});
      } else if (typeof msg.method === 'string') {
        this.emit('event', msg.method, msg.params ?? {});
      }
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new CdpError('the browser is gone'));
    }
    this.#pending.clear();
    this.emit('close');
  }
}
