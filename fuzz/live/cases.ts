/**
 * One live case: a TCP connection to the server under test that sends one mutated handshake, built
 * from the real encoders and the real client handshake (so mutations can sit behind a valid
 * ServerHello and valid keys), then ends it one of several ways: FIN, reset, or waiting for the
 * server. A few at a time are deliberately silent or drip bytes, to check the server's deadlines.
 */
import { connect, type Socket } from 'node:net';
import { FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import { ClientHandshake } from '../../src/protocol/handshake-machines.js';
import {
  decodeServerMessage,
  encodeMessage,
  type Message,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { cutPoints, fieldsOf, havoc, joinFields, mutateFields, split } from '../lib/mutate.js';
import { identityOf } from '../lib/peer.js';
import { Rng } from '../lib/rng.js';
import { bodyOf, LZ4, STORED, sealBody } from '../lib/seal.js';
import { seedMessage, seeds } from '../lib/seeds.js';
import { mutatedPlaintext } from '../targets/messages.js';

/** Shared by the cases of one campaign. */
export interface LiveContext {
  port: number;
  sources: string[];
  /** A connection the server keeps open longer than this is hung. */
  limitMs: number;
  /** The same for a connection that never completes its first frame. */
  firstFrameLimitMs: number;
  /** Connections in flight per source address, kept within the server's per-source cap. */
  inflight: Map<string, number>;
  perSource: number;
  /** Deliberate stalls still allowed at once (each holds a handshake slot for up to the limit). */
  stallsLeft: number;
}

/** How a case went. */
export interface CaseResult {
  kind: string;
  end:
    | 'server-closed'
    | 'closed-after-fin'
    | 'held-after-fin'
    | 'we-reset'
    | 'stall-closed'
    | 'hang'
    | 'refused'
    | 'no-answer';
  /** From our last byte to the server's close, when the server closed it. */
  closeMs: number | undefined;
  /** From connect to close. */
  openMs: number;
  stalled: boolean;
  heldAfterFin: boolean;
  sent: Buffer[];
}

/** End of stream inside a frame must close at once; this is the margin for a loaded machine. */
const FIN_GRACE_MS = 1000;
const WAIT_MS = 250;
const ANSWER_MS = 5000;
const KEEP_SENT = 4096;

export function frame(plain: Buffer, rng?: Rng): Buffer {
  const h = Buffer.alloc(4);
  let len = plain.length;
  if (rng?.chance(0.1)) len = rng.pick([0, 1, 5, len - 1, len + 1, 1024, 1025, 0xffffffff]);
  h.writeUInt32BE(Math.max(0, len) >>> 0);
  return Buffer.concat([h, plain]);
}

export function sample<T extends Message['type']>(type: T): Extract<Message, { type: T }> {
  return seeds().all.find((m) => m.type === type) as Extract<Message, { type: T }>;
}

export function mutated(msg: Message, rng: Rng): Buffer {
  let out = joinFields(mutateFields(fieldsOf(msg), rng, seeds().donors, 2));
  if (rng.chance(0.2)) out = havoc(out, rng, 2);
  return out;
}

export class Conn {
  readonly sock: Socket;
  readonly sent: Buffer[] = [];
  readonly t0 = Date.now();
  lastWrite = Date.now();
  closedAt: number | undefined;
  connectedOk = false;
  error: string | undefined;
  weClosed = false;
  readonly decoder = new FrameDecoder<ServerMessage>(decodeServerMessage);
  #sentBytes = 0;
  #wake: (() => void) | undefined;
  readonly ready: Promise<boolean>;

  constructor(port: number, source: string) {
    this.sock = connect({ host: '127.0.0.1', port, localAddress: source });
    this.ready = new Promise((resolve) => {
      this.sock.once('connect', () => {
        this.connectedOk = true;
        resolve(true);
      });
      this.sock.once('close', () => resolve(false));
    });
    this.sock.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err.code ?? err.message;
    });
    this.sock.on('data', (c: Buffer) => {
      this.decoder.push(c);
      this.#wake?.();
    });
    this.sock.on('close', () => {
      this.closedAt = Date.now();
      this.#wake?.();
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Writes bytes, sometimes in pieces a turn apart. */
  async write(bytes: Buffer, rng: Rng): Promise<void> {
    if (this.closed || this.sock.writableEnded) return;
    if (this.#sentBytes < KEEP_SENT) this.sent.push(bytes.subarray(0, KEEP_SENT - this.#sentBytes));
    this.#sentBytes += bytes.length;
    const pieces = rng.chance(0.25) ? split(bytes, cutPoints(bytes.length, rng).slice(0, 32)) : [bytes];
    for (const p of pieces) {
      if (this.closed) return;
      this.sock.write(p);
      if (pieces.length > 1) await new Promise((r) => setImmediate(r));
    }
    this.lastWrite = Date.now();
  }

  /** Resolves when something happens (data or close) or after ms. */
  #event(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }

  /** The next message from the server, or undefined (closed, garbage, or no answer in time). */
  async read(ms: number): Promise<ServerMessage | undefined> {
    const until = Date.now() + ms;
    for (;;) {
      try {
        const m = this.decoder.next();
        if (m) return m;
      } catch {
        return undefined;
      }
      if (this.closed || Date.now() >= until) return undefined;
      await this.#event(until - Date.now());
    }
  }

  /** Waits until the server closes, at most ms; true when it did. */
  async waitClose(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.closed && Date.now() < until) {
      // Keep reading (and dropping) what the server sends meanwhile.
      try {
        while (this.decoder.next());
      } catch {
        // Our decoder gave up on the server's bytes (keys we never set): only the close matters.
      }
      await this.#event(until - Date.now());
    }
    return this.closed;
  }

  destroy(reset: boolean): void {
    this.weClosed = true;
    if (this.closed) return;
    if (reset) this.sock.resetAndDestroy();
    else this.sock.destroy();
  }
}

/** Everything a hostile client might send first. */
async function firstFrames(c: Conn, rng: Rng): Promise<void> {
  const n = rng.chance(0.8) ? 1 : 2;
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++)
    parts.push(frame(rng.chance(0.75) ? mutatedPlaintext(rng) : encodeMessage(seedMessage(rng)), rng));
  await c.write(Buffer.concat(parts), rng);
}

/** A real ClientHello from an identity the server does not allow, then something behind the keys. */
async function helloThenAuth(c: Conn, rng: Rng): Promise<'no-answer' | undefined> {
  const hs = new ClientHandshake({
    identity: identityOf(Buffer.alloc(32, 0x40 + rng.int(8))),
    checkServerKey: () => {},
  });
  const encoder = new FrameEncoder({ compression: rng.pick(['auto', 'never', 'always'] as const) });
  await c.write(encoder.encodeToBuffer(hs.hello()), rng);
  const sh = await c.read(ANSWER_MS);
  if (!sh) return c.closed ? undefined : 'no-answer';
  if (sh.type !== 'ServerHello') return undefined;
  const { auth, keys } = hs.onServerHello(sh);
  encoder.setKeys(keys.send);
  c.decoder.setKeys(keys.receive);
  const r = rng.int(20);
  if (r < 7) {
    await c.write(encoder.encodeToBuffer(auth), rng);
  } else if (r < 11) {
    // Changed before encryption: it authenticates, then must fail as a message or a signature.
    await c.write(sealBody(keys.send, 0n, bodyOf(mutated(auth, rng), rng.chance(0.5) ? LZ4 : STORED)), rng);
  } else if (r < 13) {
    await c.write(havoc(encoder.encodeToBuffer(auth), rng, 2), rng);
  } else if (r < 17) {
    // Another message where ClientAuth belongs: a tunnel request, data, a heartbeat, before any auth.
    const m = seedMessage(rng, [
      'OpenTunnel',
      'CloseTunnel',
      'Heartbeat',
      'Data',
      'Error',
      'DataHello',
      'ClientHello',
    ]);
    await c.write(encoder.encodeToBuffer(m), rng);
  } else if (r < 19) {
    await c.write(
      Buffer.concat([encoder.encodeToBuffer(auth), encoder.encodeToBuffer(seedMessage(rng, ['OpenTunnel']))]),
      rng,
    );
  }
  // r = 19: say nothing more.
  return undefined;
}

/** A DataHello for a session that does not exist (or a mutated one), maybe followed by more. */
async function dataHello(c: Conn, rng: Rng): Promise<void> {
  const hello = seedMessage(rng, ['DataHello']) as Extract<Message, { type: 'DataHello' }>;
  const base = { ...hello, sessionId: rng.bytes(16), version: sample('DataHello').version };
  const plain = rng.chance(0.6) ? encodeMessage(base) : mutated(base, rng);
  let bytes = frame(plain, rng);
  if (rng.chance(0.4)) {
    // What a data channel sends next, under keys the server cannot have.
    const keys = { key: rng.bytes(32), nonceBase: rng.bytes(4) };
    bytes = Buffer.concat([
      bytes,
      sealBody(keys, 0n, bodyOf(encodeMessage(seedMessage(rng, ['Heartbeat'])), STORED)),
    ]);
  }
  await c.write(bytes, rng);
}

const GARBAGE = [
  Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'),
  Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'),
  Buffer.from('160301020001000200030300', 'hex'),
  Buffer.from('PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n'),
  Buffer.from('0d0a0d0a000d0a5155495400', 'hex'),
  Buffer.from('00000000', 'hex'),
  Buffer.from('ffffffff', 'hex'),
  Buffer.from('00000401', 'hex'),
];

async function garbage(c: Conn, rng: Rng): Promise<void> {
  const g = rng.chance(0.5) ? rng.pick(GARBAGE) : rng.bytes(1 + rng.smallLen(2048));
  await c.write(rng.chance(0.2) ? havoc(g, rng) : g, rng);
}

/** A valid hello cut short: in the length header, or in the body. */
function partialHello(rng: Rng): Buffer {
  const hello = rng.chance(0.6)
    ? new FrameEncoder().encodeToBuffer(
        new ClientHandshake({
          identity: identityOf(Buffer.alloc(32, 0x40)),
          checkServerKey: () => {},
        }).hello(),
      )
    : frame(encodeMessage({ ...sample('DataHello'), sessionId: rng.bytes(16) }));
  return hello.subarray(0, 1 + rng.int(hello.length - 1));
}

/** The least busy source address, waiting while every one is at the server's per-source cap (a
 * refused connection would test the cap, not the handshake). */
async function pickSource(ctx: LiveContext): Promise<string> {
  for (;;) {
    let best = ctx.sources[0]!;
    for (const s of ctx.sources) if ((ctx.inflight.get(s) ?? 0) < (ctx.inflight.get(best) ?? 0)) best = s;
    const n = ctx.inflight.get(best) ?? 0;
    if (n < ctx.perSource) {
      ctx.inflight.set(best, n + 1);
      return best;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs case `index` of the live campaign. */
export async function runLiveCase(seed: number, index: number, ctx: LiveContext): Promise<CaseResult> {
  const rng = Rng.forCase(seed, 'live-server', index);
  let kind = rng.weighted([
    [30, 'first-frame'],
    [25, 'hello-auth'],
    [20, 'data-hello'],
    [10, 'garbage'],
    [10, 'partial'],
    [3, 'drip'],
    [2, 'silent'],
  ] as const) as string;
  const stallWanted = kind === 'drip' || kind === 'silent';
  let stalled = false;
  if (stallWanted) {
    if (ctx.stallsLeft > 0) {
      ctx.stallsLeft--;
      stalled = true;
    } else kind = 'partial';
  }
  const source = await pickSource(ctx);
  const c = new Conn(ctx.port, source);
  c.sock.once('close', () => ctx.inflight.set(source, (ctx.inflight.get(source) ?? 1) - 1));
  const result = (end: CaseResult['end'], heldAfterFin = false): CaseResult => {
    if (stalled) ctx.stallsLeft++;
    return {
      kind,
      end,
      closeMs: end === 'server-closed' || end === 'closed-after-fin' ? c.closedAt! - c.lastWrite : undefined,
      openMs: (c.closedAt ?? Date.now()) - c.t0,
      stalled,
      heldAfterFin,
      sent: c.sent,
    };
  };
  if (!(await c.ready)) return result('refused');

  if (stalled) {
    // Silent, or one byte of a hello at a time: the first-frame deadline must close it.
    const limitAt = c.t0 + ctx.firstFrameLimitMs;
    if (kind === 'drip') {
      const hello = partialHello(rng);
      for (let i = 0; i < hello.length && !c.closed && Date.now() < limitAt; i++) {
        await c.write(hello.subarray(i, i + 1), rng);
        await c.waitClose(250);
      }
    }
    const closed = await c.waitClose(limitAt - Date.now());
    if (!closed) {
      c.destroy(true);
      return result('hang');
    }
    return result('stall-closed');
  }

  let noAnswer = false;
  if (kind === 'first-frame') await firstFrames(c, rng);
  else if (kind === 'hello-auth') noAnswer = (await helloThenAuth(c, rng)) === 'no-answer';
  else if (kind === 'data-hello') await dataHello(c, rng);
  else if (kind === 'garbage') await garbage(c, rng);
  else await c.write(partialHello(rng), rng);
  if (noAnswer) {
    c.destroy(true);
    return result('no-answer');
  }

  const ending = rng.weighted([
    [4, 'fin'],
    [1, 'rst'],
    [5, 'wait'],
  ] as const);
  if (ending === 'rst') {
    if (c.closed) return result('server-closed');
    c.destroy(true);
    return result('we-reset');
  }
  if (ending === 'wait' && (await c.waitClose(WAIT_MS))) return result('server-closed');
  if (c.closed) return result('server-closed');
  c.sock.end();
  if (await c.waitClose(FIN_GRACE_MS)) return result('closed-after-fin');
  c.destroy(true);
  return result('held-after-fin', true);
}
