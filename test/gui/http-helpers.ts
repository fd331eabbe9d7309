/** Plain-HTTP helpers for dashboard tests: raw requests (any Host/Origin header) and an SSE reader. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to 127.0.0.1:port with exactly the headers given (Host included, if set). */
export function rawRequest(
  port: number,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
  },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { Host: `127.0.0.1:${port}`, ...opts.headers },
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Reads a text/event-stream and lets a test wait, with a deadline, for an event that matches. */
export class SseReader {
  #events: { event: string; data: string }[] = [];
  #waiters: (() => void)[] = [];
  #close: () => void = () => {};
  status = 0;

  static open(port: number, headers: Record<string, string>): Promise<SseReader> {
    const reader = new SseReader();
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/api/events', headers: { Host: `127.0.0.1:${port}`, ...headers } },
        (res) => {
          reader.status = res.statusCode ?? 0;
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let idx = buf.indexOf('\n\n');
            while (idx >= 0) {
              const block = buf.slice(0, idx);
              buf = buf.slice(idx + 2);
              let event = 'message';
              const data: string[] = [];
              for (const line of block.split('\n')) {
                if (line.startsWith('event: ')) event = line.slice(7);
                else if (line.startsWith('data: ')) data.push(line.slice(6));
              }
              if (data.length > 0) reader.#events.push({ event, data: data.join('\n') });
              idx = buf.indexOf('\n\n');
            }
            for (const w of reader.#waiters.splice(0)) w();
          });
          resolve(reader);
        },
      );
      req.on('error', reject);
      reader.#close = () => req.destroy();
      req.end();
    });
  }

  /** Resolves with the first parsed `data` of an `event` satisfying `pred`, or rejects after timeoutMs. */
  async waitFor<T>(event: string, pred: (data: T) => boolean, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.#events.length; from++) {
        const e = this.#events[from]!;
        if (e.event !== event) continue;
        const data = JSON.parse(e.data) as T;
        if (pred(data)) return data;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching '${event}' event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The newest parsed `data` of an `event` received so far, or undefined when none has come. */
  latest<T>(event: string): T | undefined {
    for (let i = this.#events.length - 1; i >= 0; i--) {
      const e = this.#events[i]!;
      if (e.event === event) return JSON.parse(e.data) as T;
    }
    return undefined;
  }

  close(): void {
    this.#close();
  }
}
