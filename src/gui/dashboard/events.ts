/**
 * State pushed to the page as Server-Sent Events: bursts of changes coalesced into one push, and a slow
 * page only ever gets the newest state (no unbounded queue).
 */
import type { ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from './http.js';

/** Coalesce bursts of 'change' events into at most one push per this many milliseconds. */
export const PUSH_COALESCE_MS = 100;
/** A comment line on idle event streams keeps proxies and the browser from timing them out. */
export const SSE_KEEPALIVE_MS = 20_000;

/** One open Server-Sent Events response. Drops intermediate states while the socket is full. */
class EventStream {
  #res: ServerResponse;
  #pending: string | undefined;
  #blocked = false;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    res.on('drain', () => {
      this.#blocked = false;
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending !== undefined) this.#write(pending);
    });
  }

  /** Sends one event; while the socket is backed up only the newest state is kept. */
  send(event: string, data: string): void {
    const chunk = `event: ${event}\ndata: ${data}\n\n`;
    if (this.#blocked) this.#pending = chunk;
    else this.#write(chunk);
  }

  comment(text: string): void {
    if (!this.#blocked) this.#write(`: ${text}\n\n`);
  }

  end(): void {
    this.#res.end();
  }

  #write(chunk: string): void {
    if (!this.#res.write(chunk)) this.#blocked = true;
  }
}

/** Every open event stream of a dashboard, fed from one state function. */
export class EventHub {
  #streams = new Set<EventStream>();
  #state: () => string;
  #timer: NodeJS.Timeout | undefined;
  #keepalive: NodeJS.Timeout;

  /** `state` makes the JSON of one update. */
  constructor(state: () => string) {
    this.#state = state;
    this.#keepalive = setInterval(() => {
      for (const s of this.#streams) s.comment('keepalive');
    }, SSE_KEEPALIVE_MS);
    this.#keepalive.unref();
  }

  /** Turns a response into an event stream and sends it the state at once. */
  open(res: ServerResponse): void {
    const stream = new EventStream(res);
    this.#streams.add(stream);
    res.on('close', () => this.#streams.delete(stream));
    stream.send('state', this.#state());
  }

  /** Pushes the state soon (coalesced), if anyone listens. */
  schedule(): void {
    if (this.#timer !== undefined || this.#streams.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const data = this.#state();
      for (const s of this.#streams) s.send('state', data);
    }, PUSH_COALESCE_MS);
  }

  /** Tells every page something once (e.g. 'quit'), outside the coalesced state. */
  broadcast(event: string, data: unknown): void {
    const text = JSON.stringify(data);
    for (const s of this.#streams) s.send(event, text);
  }

  /** Ends every stream. */
  close(): void {
    clearInterval(this.#keepalive);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const s of this.#streams) s.end();
    this.#streams.clear();
  }
}
