/**
 * Two connected in-memory Duplex streams that behave like a slow, tiny-buffered TCP connection: every
 * write reaches the other end in pieces of at most `chunkSize` bytes, one piece per event-loop turn
 * (setImmediate), and only while the reader asks for more (real backpressure, small highWaterMark).
 * A `tamper` hook can rewrite bytes in transit and every delivered byte is recorded, so tests can flip
 * a bit on the wire or replay a recording.
 */
import { Duplex } from 'node:stream';

/** Options of a duplex pair. */
export interface DuplexPairOptions {
  /** Largest piece a write is cut into (default 7). */
  chunkSize?: number;
  /** highWaterMark of both sides of both ends (default 16 bytes). */
  highWaterMark?: number;
}

/** Rewrites one in-flight piece; `offset` is the piece's position in the direction's byte stream. */
export type Tamper = (piece: Buffer, offset: number) => Buffer;

interface Piece {
  bytes: Buffer;
  /** The end of the stream (the writer ended or was destroyed). */
  end?: true;
  /** Called once the piece is delivered (the write's callback, on its last piece). */
  done?: () => void;
}

/** One end of the pair. */
export class PipeEnd extends Duplex {
  peer!: PipeEnd;
  /** Rewrites bytes that arrive at this end. */
  tamper: Tamper | undefined;
  /** Every byte delivered to this end, in order (after tampering). */
  readonly received: Buffer[] = [];
  readonly #chunkSize: number;
  readonly #inbox: Piece[] = [];
  #wantRead = false;
  #scheduled = false;
  #offset = 0;
  #endQueued = false;

  constructor(chunkSize: number, highWaterMark: number) {
    super({ highWaterMark, allowHalfOpen: true });
    this.#chunkSize = chunkSize;
  }

  /** All bytes received so far as one buffer. */
  receivedBytes(): Buffer {
    return Buffer.concat(this.received);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (chunk.length === 0 || peer.destroyed || peer.#endQueued) {
      cb();
      return;
    }
    for (let off = 0; off < chunk.length; off += this.#chunkSize) {
      const last = off + this.#chunkSize >= chunk.length;
      peer.#inbox.push({
        bytes: chunk.subarray(off, off + this.#chunkSize),
        ...(last ? { done: () => cb() } : {}),
      });
    }
    peer.#schedule();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.peer.#queueEnd();
    cb();
  }

  override _read(): void {
    this.#wantRead = true;
    this.#schedule();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Like a closed TCP socket: what was already sent still arrives, then the peer sees the end.
    this.peer.#queueEnd();
    for (const p of this.#inbox.splice(0)) p.done?.();
    cb(err);
  }

  #queueEnd(): void {
    if (this.#endQueued) return;
    this.#endQueued = true;
    this.#inbox.push({ bytes: Buffer.alloc(0), end: true });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#deliverOne();
    });
  }

  /** Delivers one piece per turn of the event loop, and only while the reader wants more. */
  #deliverOne(): void {
    if (this.destroyed || !this.#wantRead) return;
    const piece = this.#inbox.shift();
    if (!piece) return;
    if (piece.end) {
      this.push(null);
      return;
    }
    const bytes = this.tamper ? this.tamper(Buffer.from(piece.bytes), this.#offset) : piece.bytes;
    this.#offset += piece.bytes.length;
    this.received.push(Buffer.from(bytes));
    this.#wantRead = this.push(bytes);
    piece.done?.();
    if (this.#inbox.length > 0) this.#schedule();
  }
}

/** Two connected ends: what `a` writes, `b` reads, and the other way round. */
export function duplexPair(opts: DuplexPairOptions = {}): [PipeEnd, PipeEnd] {
  const chunkSize = opts.chunkSize ?? 7;
  const hwm = opts.highWaterMark ?? 16;
  const a = new PipeEnd(chunkSize, hwm);
  const b = new PipeEnd(chunkSize, hwm);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A tamper hook that XORs `mask` into the byte at `position` of the stream. */
export function flipByteAt(position: number, mask = 0x01): Tamper {
  return (piece, offset) => {
    const i = position - offset;
    if (i >= 0 && i < piece.length) piece[i] = piece[i]! ^ mask;
    return piece;
  };
}
