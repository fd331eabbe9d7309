/**
 * The client's handshakes as it runs them over a stream (runClientHandshake and
 * runDataClientHandshake on a FramedConnection), against a hostile server in memory that answers
 * each step validly, with mutated bytes (cleartext, or keyed and changed before or after
 * encryption), with a validly signed weak key, with a refusal, with garbage, a half frame, an end of
 * stream, a reset or silence. The server side of the same code meets hostile clients in the live
 * campaign. Properties: the handshake settles within its deadline (plus a margin) with success or a
 * coded error, and no error escapes as an uncaught exception.
 */
import type { Duplex } from 'node:stream';
import { AuthRejectedError, ProtocolError } from '../../src/protocol/errors.js';
import { FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { acceptDataHello, ServerHandshake } from '../../src/protocol/handshake-machines.js';
import {
  type ClientMessage,
  decodeClientMessage,
  decodeServerMessage,
  encodeMessage,
  type Message,
  type ServerHello,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { FramedConnection } from '../../src/transport/framed-connection.js';
import { runClientHandshake, runDataClientHandshake } from '../../src/transport/handshake.js';
import { cutPoints, fieldsOf, havoc, joinFields, mutateFields, split } from '../lib/mutate.js';
import { expectCoded, HangError, OracleError } from '../lib/outcome.js';
import { identityOf, signServerHello, WEAK_X25519 } from '../lib/peer.js';
import { pipePair } from '../lib/pipe.js';
import { Rng } from '../lib/rng.js';
import { bodyOf, LZ4, STORED, sealBody } from '../lib/seal.js';
import { seeds } from '../lib/seeds.js';
import type { Target } from '../lib/target.js';

interface StreamInput {
  kind: 'control' | 'data';
  /** Seeds the hostile server's choices. */
  peerSeed: number;
  clientSeed: Buffer;
  serverSeed: Buffer;
  pinnedSeed: Buffer;
  timeoutMs: number;
}

function sample<T extends Message['type']>(type: T): Extract<Message, { type: T }> {
  return seeds().all.find((m) => m.type === type) as Extract<Message, { type: T }>;
}

function mutated(msg: Message, rng: Rng): Buffer {
  let out = joinFields(mutateFields(fieldsOf(msg), rng, seeds().donors, 2));
  if (rng.chance(0.2)) out = havoc(out, rng, 2);
  return out;
}

function clearFrame(plain: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(plain.length);
  return Buffer.concat([h, plain]);
}

/** The hostile server: reads the client's frames and answers by its generator's choices. */
class HostileServer {
  readonly #rng: Rng;
  readonly #io: Duplex;
  readonly #decoder = new FrameDecoder<ClientMessage>(decodeClientMessage);
  readonly #encoder = new FrameEncoder();
  readonly #input: StreamInput;
  #keys: { send: { key: Buffer; nonceBase: Buffer } } | undefined;
  #sent = 0n;
  #step = 0;
  /** A cleartext AuthFail went out (only a version mismatch may be believed from it). */
  clearRefusal = false;
  /** A keyed AuthFail went out (after the server proved its key). */
  keyedRefusal = false;

  constructor(io: Duplex, input: StreamInput) {
    this.#io = io;
    this.#input = input;
    this.#rng = new Rng(input.peerSeed);
    io.on('error', () => {});
    io.on('data', (c: Buffer) => this.#onData(c));
  }

  #write(bytes: Buffer): void {
    if (this.#io.destroyed || this.#io.writableEnded) return;
    // Sometimes in small pieces, each its own write.
    const pieces = this.#rng.chance(0.3)
      ? split(bytes, cutPoints(bytes.length, this.#rng).slice(0, 64))
      : [bytes];
    for (const p of pieces) this.#io.write(p);
  }

  /** Something other than the expected answer; true when it ended the exchange. */
  #misbehave(): boolean {
    const rng = this.#rng;
    const r = rng.int(8);
    if (r === 0) {
      this.#io.end();
    } else if (r === 1) {
      this.#io.destroy();
    } else if (r === 2) {
      // Silence: the client's deadline must end it.
    } else if (r === 3) {
      this.#write(rng.bytes(1 + rng.int(64)));
    } else if (r === 4) {
      // A length header and part of a frame, then silence or the end.
      const h = Buffer.alloc(4);
      h.writeUInt32BE(rng.pick([1, 100, 1024, 1025, 262_167, 0xffffffff]));
      this.#write(Buffer.concat([h, rng.bytes(rng.int(20))]));
      if (rng.chance(0.5)) this.#io.end();
    } else {
      // A refusal in cleartext, any reason, text the client must never show.
      const fail = {
        ...sample('AuthFail'),
        ...(rng.chance(0.5) ? { reason: 'version_mismatch' as const } : {}),
        message: `${CANARY}${rng.pick(NASTY)}`,
      };
      this.clearRefusal = true;
      this.#write(clearFrame(rng.chance(0.5) ? encodeMessage(fail) : mutated(fail, rng)));
    }
    return true;
  }

  /** A keyed frame: valid, changed before encryption, or changed after. */
  #keyed(msg: Message): void {
    const keys = this.#keys!.send;
    const rng = this.#rng;
    const r = rng.int(6);
    let frame: Buffer;
    if (r < 3) {
      frame = sealBody(keys, this.#sent, bodyOf(encodeMessage(msg), rng.chance(0.5) ? LZ4 : STORED));
    } else if (r < 5) {
      frame = sealBody(keys, this.#sent, bodyOf(mutated(msg, rng), rng.chance(0.5) ? LZ4 : STORED));
    } else {
      frame = havoc(sealBody(keys, this.#sent, bodyOf(encodeMessage(msg), STORED)), rng, 2);
    }
    this.#sent++;
    this.#write(frame);
  }

  #onData(chunk: Buffer): void {
    this.#decoder.push(chunk);
    for (;;) {
      let msg: ClientMessage | undefined;
      try {
        msg = this.#decoder.next();
      } catch {
        return;
      }
      if (!msg) return;
      this.#answer(msg);
    }
  }

  #answer(msg: ClientMessage): void {
    const rng = this.#rng;
    const step = this.#step++;
    if (rng.chance(0.2)) {
      this.#misbehave();
      return;
    }
    if (msg.type === 'ClientHello' && step === 0) {
      const server = new ServerHandshake({ identity: identityOf(this.#input.serverSeed) });
      const { hello, keys } = server.onClientHello(msg);
      const r = rng.int(6);
      if (r < 3) this.#write(this.#encoder.encodeToBuffer(hello));
      else if (r < 5) this.#write(clearFrame(mutated(hello, rng)));
      else {
        const unsigned = {
          version: hello.version,
          identityKey: hello.identityKey,
          ephemeralKey: rng.pick(WEAK_X25519),
          nonce: hello.nonce,
        };
        const evil: ServerHello = {
          type: 'ServerHello',
          ...unsigned,
          signature: signServerHello(identityOf(this.#input.serverSeed), msg, unsigned),
        };
        this.#write(clearFrame(encodeMessage(evil)));
      }
      this.#keys = keys;
      this.#decoder.setKeys(keys.receive);
      return;
    }
    if (msg.type === 'ClientAuth' && this.#keys) {
      const answers: ServerMessage[] = [
        sample('AuthOk'),
        { ...sample('AuthFail'), message: `refused ${rng.pick(NASTY)} here` },
        sample('TunnelStatus'),
        sample('Heartbeat'),
        sample('Error'),
      ];
      const first = rng.chance(0.6) ? answers[0]! : rng.pick(answers);
      const second = rng.chance(0.2) ? rng.pick(answers) : undefined;
      if (first.type === 'AuthFail' || second?.type === 'AuthFail') this.keyedRefusal = true;
      this.#keyed(first);
      if (second) this.#keyed(second);
      return;
    }
    if (msg.type === 'DataHello' && step === 0) {
      const { ack } = acceptDataHello(msg, Buffer.alloc(32, 9));
      const r = rng.int(4);
      if (r < 2) this.#write(this.#encoder.encodeToBuffer(ack));
      else this.#write(clearFrame(mutated(ack, rng)));
      return;
    }
    this.#misbehave();
  }
}

/** Marks text only a cleartext (unauthenticated) refusal carries. */
const CANARY = 'cleartext-refusal-text';
/** Characters that must reach a terminal escaped. */
const NASTY = ['\u001b[2J', '\u0007', '\u009b31m', '\u202e', '\r\n', '\u0000', '\u007f'];
const RAW_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** What the client says about a refusal: no unauthenticated text, no raw control characters, and
 * an unauthenticated refusal other than a version mismatch is not believed. */
function checkShown(err: Error, server: HostileServer): void {
  if (err.message.includes(CANARY)) {
    throw new OracleError(
      `the client shows the text of an unauthenticated refusal: ${JSON.stringify(err.message)}`,
    );
  }
  if (RAW_CONTROLS.test(err.message)) {
    throw new OracleError(
      `the client's error holds raw control characters from the peer: ${JSON.stringify(err.message)}`,
    );
  }
  if (
    err instanceof AuthRejectedError &&
    err.reason !== 'version_mismatch' &&
    server.clearRefusal &&
    !server.keyedRefusal
  ) {
    throw new OracleError(`the client believed an unauthenticated refusal (${err.reason})`);
  }
}

async function execute(input: StreamInput): Promise<void> {
  const [clientEnd, serverEnd] = pipePair();
  const server = new HostileServer(serverEnd, input);
  const conn = new FramedConnection<ServerMessage, ClientMessage>(clientEnd, decodeServerMessage);
  const pinned = identityOf(input.pinnedSeed).publicRaw;
  const t0 = Date.now();
  try {
    if (input.kind === 'control') {
      await runClientHandshake(conn, {
        identity: identityOf(input.clientSeed),
        checkServerKey: (raw) => {
          if (!raw.equals(pinned)) throw new ProtocolError('ERR_SERVER_KEY_MISMATCH', 'not the pinned key');
        },
        timeoutMs: input.timeoutMs,
      });
    } else {
      await runDataClientHandshake(conn, {
        sessionId: Buffer.alloc(16, 8),
        sessionSecret: Buffer.alloc(32, 9),
        timeoutMs: input.timeoutMs,
      });
    }
  } catch (err) {
    expectCoded(err);
    checkShown(err as Error, server);
  } finally {
    conn.close();
    serverEnd.destroy();
  }
  const took = Date.now() - t0;
  if (took > input.timeoutMs + 1000)
    throw new HangError(`the handshake took ${took} ms with a deadline of ${input.timeoutMs} ms`);
}

/** The client's handshakes over a stream, against a hostile server. */
export const handshakeStreams: Target<StreamInput> = {
  name: 'handshake-streams',
  about:
    'runClientHandshake / runDataClientHandshake over an in-memory stream vs a hostile server (mutated, weakly keyed, keyed-and-changed answers, refusals, garbage, half frames, FIN, reset, silence); settles in time, coded errors only',
  weight: 10_000,
  hangMs: 4000,
  setup: () => void seeds(),
  generate: (rng) => {
    const serverSeed = Buffer.alloc(32, 1 + rng.int(4));
    return {
      kind: rng.chance(0.7) ? 'control' : 'data',
      peerSeed: rng.u32(),
      clientSeed: Buffer.alloc(32, 1 + rng.int(4)),
      serverSeed,
      pinnedSeed: rng.chance(0.9) ? serverSeed : Buffer.alloc(32, 7),
      timeoutMs: rng.pick([50, 100, 200]),
    };
  },
  execute,
};
