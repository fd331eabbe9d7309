/**
 * A frame codec bound to a byte stream (a socket, or an in-memory duplex in tests): the small piece of
 * glue between the protocol's state machines and Node streams. It decodes lazily, only when someone
 * waits for a message, so keys can change between two frames that arrived in one chunk.
 */
import type { Duplex } from 'node:stream';
import { isProtocolError, ProtocolError } from '../protocol/errors.js';
import { type CompressionMode, FrameDecoder, FrameEncoder } from '../protocol/frame-codec.js';
import { CHANNEL_LINGER_MS, MAX_FRAME_LEN, PARTIAL_FRAME_TIMEOUT_MS } from '../protocol/limits.js';
import type { Message } from '../protocol/messages.js';
import { countFrameError } from './frame-errors.js';
import { LinkMonitor } from './link-monitor.js';

/** Frames up to this size are joined before writing. */
const SMALL_FRAME = 4096;
/** Stop reading from the stream when this many undecoded bytes are waiting. */
const READ_BUFFER_LIMIT = 2 * MAX_FRAME_LEN;

/** A channel of messages over a stream. `In` is what the peer sends, `Out` what we send. */
export class FramedConnection<In extends Message, Out extends Message> {
  readonly stream: Duplex;
  readonly encoder: FrameEncoder;
  readonly decoder: FrameDecoder<In>;
  /** Whether the stream backs up: what the encoder's `auto` compression follows. */
  readonly link = new LinkMonitor();
  #handler: ((msg: In) => void) | undefined;
  #waiter: { resolve: (m: In) => void; reject: (e: Error) => void } | undefined;
  #paused = false;
  #ended = false;
  #closeError: Error | undefined;
  #closed = false;
  #closeListeners: Array<(err: Error | undefined) => void> = [];
  #endListener: (() => void) | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  #partialTimer: NodeJS.Timeout | undefined;
  readonly #partialTimeoutMs: number;
  /** When the last bytes arrived (Date.now()); a sign of life of the peer. */
  lastReceivedAt = Date.now();

  constructor(
    stream: Duplex,
    decode: (plaintext: Buffer) => In,
    options: { compression?: CompressionMode; partialFrameTimeoutMs?: number } = {},
  ) {
    this.stream = stream;
    this.encoder = new FrameEncoder({ ...options, link: this.link });
    this.decoder = new FrameDecoder(decode);
    this.#partialTimeoutMs = options.partialFrameTimeoutMs ?? PARTIAL_FRAME_TIMEOUT_MS;
    stream.on('data', (chunk: Buffer) => {
      this.lastReceivedAt = Date.now();
      this.decoder.push(chunk);
      this.#pump();
      if (this.decoder.midFrame) this.#armPartialTimer();
    });
    stream.on('end', () => {
      this.#ended = true;
      this.#pump();
    });
    stream.on('error', (err) => this.#finish(err));
    stream.on('close', () => this.#finish(undefined));
  }

  /** True once the connection is closed (or failed). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one message. Returns false when the stream's buffer is full: wait for 'drain'. */
  send(msg: Out): boolean {
    if (this.#closed || this.stream.writableEnded) return false;
    const ok = this.#write(msg);
    this.link.wrote(this.stream.writableLength);
    return ok;
  }

  #write(msg: Out): boolean {
    let parts: Buffer[];
    try {
      parts = this.encoder.encode(msg);
    } catch (err) {
      // An exhausted counter (or a message too large to encode) ends this channel, never the process.
      this.close(err as Error);
      return false;
    }
    if (parts.length === 1) return this.stream.write(parts[0]);
    let total = 0;
    for (const p of parts) total += p.length;
    // A small frame goes out as one buffer: one plain write instead of a gathered one.
    if (total <= SMALL_FRAME) return this.stream.write(Buffer.concat(parts, total));
    this.stream.cork();
    let ok = true;
    for (const p of parts) ok = this.stream.write(p);
    this.stream.uncork();
    return ok;
  }

  /** Waits for the next message (handshakes). Rejects on close, a protocol error or the timeout. */
  receive(timeoutMs?: number): Promise<In> {
    if (this.#handler) throw new Error('receive() after onMessage()');
    if (this.#waiter) throw new Error('receive() while another receive() waits');
    return new Promise<In>((resolve, reject) => {
      if (this.#closed) {
        reject(this.#closeError ?? new ProtocolError('ERR_CLOSED', 'connection closed'));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.#waiter = undefined;
      };
      this.#waiter = {
        resolve: (m) => {
          done();
          resolve(m);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            this.#waiter?.reject(
              new ProtocolError('ERR_HANDSHAKE_TIMEOUT', `no message within ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
      }
      this.#pump();
    });
  }

  /** From now on, every message goes to `handler` as it is decoded. */
  onMessage(handler: (msg: In) => void): void {
    this.#handler = handler;
    queueMicrotask(() => this.#pump());
  }

  /**
   * Hands the connection to a new owner: drops the message handler and the end listener, so the next
   * message waits for receive() or onMessage(). Messages already buffered are kept.
   */
  detach(): void {
    this.#handler = undefined;
    this.#endListener = undefined;
  }

  /** Called once when the peer ends its side of the stream and every frame before it was delivered. */
  onEnd(listener: () => void): void {
    this.#endListener = listener;
  }

  /** Called once when the connection is closed; with the error that closed it, if any. Returns an
   * unsubscribe function. */
  onClose(listener: (err: Error | undefined) => void): () => void {
    if (this.#closed) {
      queueMicrotask(() => listener(this.#closeError));
      return () => {};
    }
    this.#closeListeners.push(listener);
    return () => {
      const i = this.#closeListeners.indexOf(listener);
      if (i >= 0) this.#closeListeners.splice(i, 1);
    };
  }

  /** Stops delivering messages (and, once the buffer fills, reading) until resume(). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  /** Closes the stream; with an error, the close listeners receive it. */
  close(err?: Error): void {
    if (err && !this.#closeError) this.#closeError = err;
    this.stream.destroy();
    this.#finish(err);
  }

  /**
   * Ends our side after what was sent is flushed (the peer reads it, then sees the end), and closes
   * for good after CHANNEL_LINGER_MS: a peer that never reads or never ends cannot keep the socket.
   */
  end(lingerMs: number = CHANNEL_LINGER_MS): void {
    if (this.#closed) return;
    if (!this.stream.writableEnded) this.stream.end();
    this.#lingerTimer ??= setTimeout(() => this.close(), lingerMs);
    this.#lingerTimer.unref();
  }

  /** Calls `listener` once when the stream's write buffer has drained. */
  onDrain(listener: () => void): void {
    this.stream.once('drain', listener);
  }

  /** Bytes waiting in the stream's write buffer. */
  get writeBacklog(): number {
    return this.stream.writableLength;
  }

  /** The peer is mid-frame: no byte for the timeout while reading closes the connection. */
  #armPartialTimer(): void {
    if (this.#partialTimer || this.#closed) return;
    const check = () => {
      this.#partialTimer = undefined;
      if (this.#closed || !this.decoder.midFrame) return;
      const idle = Date.now() - this.lastReceivedAt;
      // Paused by us (backpressure, or an owner waiting): the peer is not the one who is silent.
      if (idle < this.#partialTimeoutMs || this.stream.isPaused() || this.#paused) {
        this.#partialTimer = setTimeout(check, Math.max(10, this.#partialTimeoutMs - idle));
        this.#partialTimer.unref();
        return;
      }
      const err = new ProtocolError(
        'ERR_IDLE_TIMEOUT',
        `no byte for ${this.#partialTimeoutMs} ms in the middle of a frame`,
      );
      countFrameError(err);
      this.close(err);
    };
    this.#partialTimer = setTimeout(check, this.#partialTimeoutMs);
    this.#partialTimer.unref();
  }

  #pump(): void {
    let starved = false;
    while (!this.#closed && !this.#paused && (this.#handler || this.#waiter)) {
      let msg: In | undefined;
      try {
        msg = this.decoder.next();
      } catch (err) {
        if (isProtocolError(err)) countFrameError(err);
        // A waiting handshake gets the error and decides (it may answer a version mismatch first);
        // otherwise the connection closes with it.
        if (this.#waiter) this.#waiter.reject(err as Error);
        else this.close(err as Error);
        return;
      }
      if (msg === undefined) {
        starved = true;
        break;
      }
      if (this.#waiter) this.#waiter.resolve(msg);
      else this.#handler!(msg);
    }
    if (this.#closed) return;
    if (this.#ended && starved && this.decoder.midFrame) {
      // The peer ended (or reset) the stream inside a frame: that frame can never complete.
      const err = new ProtocolError(
        'ERR_TRUNCATED',
        'the peer ended the connection in the middle of a frame',
      );
      countFrameError(err);
      if (this.#waiter) this.#waiter.reject(err);
      this.close(err);
      return;
    }
    if (this.decoder.buffered > READ_BUFFER_LIMIT || this.#paused) {
      if (!this.stream.isPaused()) this.stream.pause();
    } else if (this.stream.isPaused()) {
      this.stream.resume();
    }
    if (this.#ended && !this.decoder.midFrame && !this.#paused) {
      this.#ended = false;
      if (this.#waiter) this.#waiter.reject(new ProtocolError('ERR_CLOSED', 'peer closed the connection'));
      const l = this.#endListener;
      this.#endListener = undefined;
      l?.();
    }
  }

  #finish(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    if (this.#partialTimer) clearTimeout(this.#partialTimer);
    if (err && !this.#closeError) this.#closeError = err;
    const e = this.#closeError;
    this.#waiter?.reject(e ?? new ProtocolError('ERR_CLOSED', 'connection closed'));
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const l of listeners) l(e);
  }
}
