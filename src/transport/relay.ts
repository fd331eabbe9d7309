/**
 * The relay between a keyed data channel and a plain TCP socket, used by both ends: the server relays
 * a visitor's connection, the client its local target. Backpressure both ways (a full writer pauses
 * the other side's reader), TCP half-close carried as a FIN flag, a reset carried as an Error frame.
 */
import type { Socket } from 'node:net';
import { ProtocolError } from '../protocol/errors.js';
import { MAX_PAYLOAD } from '../protocol/limits.js';
import type { Data, ErrorMsg, Message } from '../protocol/messages.js';
import type { Throttle } from './rate-limiter.js';
import { resetSocket } from './sockets.js';

/**
 * What the relay needs of a data channel (a FramedConnection from either end): messages in, Data and
 * Error out, backpressure, and the ways to end it.
 */
export interface RelayChannel {
  readonly closed: boolean;
  send(msg: Data | ErrorMsg): boolean;
  onMessage(handler: (msg: Message) => void): void;
  onEnd(listener: () => void): void;
  onClose(listener: (err: Error | undefined) => void): () => void;
  onDrain(listener: () => void): void;
  /** Bytes waiting in the channel's write buffer: above zero, the link is behind. */
  readonly writeBacklog: number;
  /** Drops the message handler and end listener: the channel goes back to its owner. */
  detach(): void;
  resume(): void;
  pause(): void;
  /** Ends our side gracefully (flush, then a bounded linger). */
  end(): void;
  /** Closes at once. */
  close(err?: Error): void;
}

/** How a relay ended. */
export interface RelayEnd {
  /** Both sides finished with a FIN each way. */
  clean: boolean;
  /** What broke it, when not clean. */
  error?: Error;
  /** The peer reported that it could not serve the connection (Error target_unreachable). */
  refused?: boolean;
  bytesToSocket: number;
  bytesFromSocket: number;
}

/** Callbacks for counters; called often, keep them cheap. */
export interface RelayHooks {
  /** Bytes written to the socket (they came from the channel). */
  onToSocket?(n: number): void;
  /** Bytes read from the socket (they go into the channel). */
  onFromSocket?(n: number): void;
  onEnd?(end: RelayEnd): void;
  /**
   * After a clean end (FIN both ways) the channel is idle and may carry another connection. Return
   * true to take it back (the relay lets go of it without closing); false to end it.
   */
  reuse?(): boolean;
  /**
   * Rate limits, by direction (a tunnel's shared buckets): the reading side pauses for as long as
   * its throttle says, so bytes wait in the kernel's buffers and the sender's; none is dropped.
   */
  limit?: { fromSocket?: Throttle; toSocket?: Throttle };
  /** Told each pause a limit asked for, in milliseconds (metrics). */
  onLimited?(direction: 'fromSocket' | 'toSocket', ms: number): void;
}

/** A running relay: ends it from outside (revocation, shutdown). */
export interface RelayHandle {
  /** Resets both sides now. */
  abort(why: Error): void;
}

/** Starts relaying; the socket must have been created with allowHalfOpen. */
export function relay(channel: RelayChannel, socket: Socket, hooks: RelayHooks = {}): RelayHandle {
  let sentFin = false;
  let gotFin = false;
  let done = false;
  let toSocket = 0;
  let fromSocket = 0;
  // Each reader pauses while its writer is full or its rate limit asks; it resumes when neither does.
  let channelWaitsDrain = false;
  let channelWaitsRate = false;
  let socketWaitsDrain = false;
  let socketWaitsRate = false;
  let rateTimers: NodeJS.Timeout[] = [];
  // Reads gathered while the channel is backed up, sent as one frame (up to MAX_PAYLOAD).
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let flushTimer: NodeJS.Immediate | undefined;
  const resumeChannel = () => {
    if (!done && !channelWaitsDrain && !channelWaitsRate) channel.resume();
  };
  const resumeSocket = () => {
    if (!done && !socketWaitsDrain && !socketWaitsRate) socket.resume();
  };
  const throttle = (direction: 'fromSocket' | 'toSocket', n: number): number => {
    const t = hooks.limit?.[direction];
    const ms = t ? t.take(n) : 0;
    if (ms > 0) hooks.onLimited?.(direction, ms);
    return ms;
  };
  const later = (ms: number, f: () => void) => {
    const timer = setTimeout(() => {
      rateTimers = rateTimers.filter((x) => x !== timer);
      f();
    }, ms);
    rateTimers.push(timer);
  };

  const end = (clean: boolean, error?: Error, resetPeer = true, refused = false) => {
    if (done) return;
    done = true;
    for (const timer of rateTimers) clearTimeout(timer);
    rateTimers = [];
    if (flushTimer) clearImmediate(flushTimer);
    pending = [];
    pendingLen = 0;
    if (clean) {
      // Usually ended already (at the peer's FIN): a second end() costs an Error with a stack trace.
      if (!socket.writableEnded) socket.end();
      unsubscribeClose();
      channel.detach();
      if (!(hooks.reuse?.() ?? false)) channel.end();
    } else {
      if (resetPeer && !channel.closed) {
        channel.send({
          type: 'Error',
          streamId: 0,
          code: 'reset',
          message: error?.message ?? 'connection reset',
        });
        channel.end();
      } else {
        channel.close();
      }
      resetSocket(socket);
    }
    hooks.onEnd?.({
      clean,
      ...(error ? { error } : {}),
      ...(refused ? { refused } : {}),
      bytesToSocket: toSocket,
      bytesFromSocket: fromSocket,
    });
  };

  const maybeDone = () => {
    if (sentFin && gotFin) end(true);
  };

  channel.onMessage((msg) => {
    if (done) return;
    if (msg.type === 'Data') {
      if (gotFin) {
        end(false, new ProtocolError('ERR_UNEXPECTED_MESSAGE', 'Data after FIN'));
        return;
      }
      const pieces = msg.pieces ?? [msg.payload];
      let n = 0;
      let ok = true;
      if (pieces.length > 1) socket.cork();
      for (const p of pieces) {
        n += p.length;
        if (p.length > 0) ok = socket.write(p);
      }
      if (pieces.length > 1) socket.uncork();
      if (n > 0) {
        toSocket += n;
        hooks.onToSocket?.(n);
        if (!ok && !channelWaitsDrain) {
          channelWaitsDrain = true;
          channel.pause();
          socket.once('drain', () => {
            channelWaitsDrain = false;
            resumeChannel();
          });
        }
        const wait = throttle('toSocket', n);
        if (wait > 0 && !msg.fin) {
          channelWaitsRate = true;
          channel.pause();
          later(wait, () => {
            channelWaitsRate = false;
            resumeChannel();
          });
        }
      }
      if (msg.fin) {
        gotFin = true;
        socket.end();
        maybeDone();
      }
    } else if (msg.type === 'Error') {
      const refused = msg.code === 'target_unreachable';
      end(false, new Error(`peer reset: ${msg.message}`), false, refused);
    } else if (msg.type === 'Heartbeat') {
      // A keepalive sent while the channel was idle may cross its assignment: harmless.
    } else {
      end(false, new ProtocolError('ERR_UNEXPECTED_MESSAGE', `${msg.type} on a data channel`));
    }
  });
  channel.onEnd(() => {
    if (!done && !(sentFin && gotFin)) end(false, new Error('data channel ended early'), false);
  });
  const unsubscribeClose = channel.onClose((err) => {
    if (!done) end(false, err ?? new Error('data channel closed'), false);
  });
  channel.resume();

  const onDrain = () => {
    socketWaitsDrain = false;
    resumeSocket();
  };
  const sent = (ok: boolean) => {
    if (!ok && !channel.closed && !socketWaitsDrain) {
      socketWaitsDrain = true;
      socket.pause();
      channel.onDrain(onDrain);
    }
  };
  const flush = () => {
    if (flushTimer) clearImmediate(flushTimer);
    flushTimer = undefined;
    if (done || pendingLen === 0) return;
    const payload = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    sent(channel.send({ type: 'Data', fin: false, payload }));
  };
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    fromSocket += chunk.length;
    hooks.onFromSocket?.(chunk.length);
    if (pendingLen > 0 || channel.writeBacklog > 0) {
      // The channel is behind, so this read would wait in its buffer anyway: gather the reads of
      // this turn of the event loop into larger frames (fewer frames, more context for LZ4).
      for (let off = 0; off < chunk.length; ) {
        const piece = chunk.subarray(off, off + MAX_PAYLOAD - pendingLen);
        pending.push(piece);
        pendingLen += piece.length;
        off += piece.length;
        if (pendingLen === MAX_PAYLOAD) flush();
      }
      if (pendingLen > 0) flushTimer ??= setImmediate(flush);
    } else {
      let ok = true;
      for (let off = 0; off < chunk.length; off += MAX_PAYLOAD) {
        ok = channel.send({ type: 'Data', fin: false, payload: chunk.subarray(off, off + MAX_PAYLOAD) });
      }
      sent(ok);
    }
    const wait = throttle('fromSocket', chunk.length);
    if (wait > 0) {
      socketWaitsRate = true;
      socket.pause();
      later(wait, () => {
        socketWaitsRate = false;
        resumeSocket();
      });
    }
  });
  socket.on('end', () => {
    if (done) return;
    flush();
    channel.send({ type: 'Data', fin: true, payload: Buffer.alloc(0) });
    sentFin = true;
    maybeDone();
  });
  socket.on('error', (err) => {
    if (!done) end(false, err);
  });
  socket.on('close', () => {
    if (!done && !(sentFin && gotFin)) end(false, new Error('socket closed'));
  });
  socket.resume();
  return { abort: (why) => end(false, why) };
}
