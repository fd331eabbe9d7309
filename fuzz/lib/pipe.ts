/** Two connected in-memory Duplex streams: what one end writes, the other reads, a turn later. */
import { Duplex } from 'node:stream';

class End extends Duplex {
  peer!: End;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.push(chunk);
      cb();
    });
  }
  override _final(cb: (err?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.push(null);
      cb();
    });
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.destroy();
    });
    cb(err);
  }
}

/** A connected pair [a, b]; half-close travels (allowHalfOpen), destroy closes both. */
export function pipePair(): [Duplex, Duplex] {
  const a = new End({ allowHalfOpen: true });
  const b = new End({ allowHalfOpen: true });
  a.peer = b;
  b.peer = a;
  return [a, b];
}
