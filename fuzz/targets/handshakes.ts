/**
 * The handshake state machines without sockets: ClientHandshake against a hostile server,
 * ServerHandshake against a hostile client (both sides' hellos mutated as bytes, or validly signed
 * with weak keys), and both sides of the data-channel handshake. Properties: only coded errors; a
 * handshake that succeeds did so on exactly the honest bytes, and both sides agree on the keys.
 */
import { timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../../src/protocol/errors.js';
import {
  acceptDataHello,
  type ChannelKeys,
  ClientHandshake,
  DataClientHandshake,
  ServerHandshake,
} from '../../src/protocol/handshake-machines.js';
import {
  type ClientHello,
  decodeClientMessage,
  decodeServerMessage,
  encodeMessage,
  type Message,
  PROTOCOL_VERSION,
  type ServerHello,
} from '../../src/protocol/messages.js';
import { fieldsOf, havoc, joinFields, mutateFields } from '../lib/mutate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import { checkSigning, identityOf, signClientAuth, signServerHello, WEAK_X25519 } from '../lib/peer.js';
import type { Rng } from '../lib/rng.js';
import { seeds } from '../lib/seeds.js';
import type { Target } from '../lib/target.js';

/** Changes an encoded message: structure-aware mostly, sometimes byte havoc. */
function mutateMessage(msg: Message, rng: Rng): Buffer {
  let out = joinFields(mutateFields(fieldsOf(msg), rng, seeds().donors, 2));
  if (rng.chance(0.2)) out = havoc(out, rng, 2);
  return out;
}

/** A few fixed identities per run keep key import off the hot path. */
function seedOf(rng: Rng): Buffer {
  return Buffer.alloc(32, 1 + rng.int(6));
}

function pinTo(raw: Buffer): (got: Buffer) => void {
  return (got) => {
    if (got.length !== raw.length || !timingSafeEqual(got, raw)) {
      throw new ProtocolError('ERR_SERVER_KEY_MISMATCH', 'the server key is not the pinned one');
    }
  };
}

function decodeAs<T extends Message['type']>(
  decode: (p: Buffer) => Message,
  plaintext: Buffer,
  type: T,
): Extract<Message, { type: T }> | undefined {
  try {
    const m = decode(plaintext);
    return m.type === type ? (m as Extract<Message, { type: T }>) : undefined;
  } catch (err) {
    expectCoded(err);
    return undefined;
  }
}

function sameKeys(a: ChannelKeys, b: ChannelKeys): boolean {
  return (
    a.send.key.equals(b.receive.key) &&
    a.send.nonceBase.equals(b.receive.nonceBase) &&
    a.receive.key.equals(b.send.key) &&
    a.receive.nonceBase.equals(b.send.nonceBase)
  );
}

interface ControlInput {
  side: 'client' | 'server';
  clientSeed: Buffer;
  serverSeed: Buffer;
  /** The key the client pins (usually the server's). */
  pinnedSeed: Buffer;
  clientEph: Buffer;
  clientNonce: Buffer;
  serverEph: Buffer;
  serverNonce: Buffer;
  /** The hello the side under test receives, as bytes. */
  hello: Buffer;
  /** True when `hello` is what the honest peer sends. */
  honestHello: boolean;
  /** Client side: a hello the pinned server signed itself may succeed unless its key is weak. */
  signedByServer: boolean;
  /** Server side: the ClientAuth it receives (empty: none), and whether it is the honest one. */
  auth: Buffer;
  honestAuth: boolean;
  /** Server side: call order abuse (ClientAuth first, the hello twice). */
  order: 'normal' | 'auth-first' | 'hello-twice';
}

function client(input: ControlInput): ClientHandshake {
  return new ClientHandshake({
    identity: identityOf(input.clientSeed),
    checkServerKey: pinTo(identityOf(input.pinnedSeed).publicRaw),
    ephemeralSecret: input.clientEph,
    nonce: input.clientNonce,
  });
}

function server(input: ControlInput): ServerHandshake {
  return new ServerHandshake({
    identity: identityOf(input.serverSeed),
    ephemeralSecret: input.serverEph,
    nonce: input.serverNonce,
  });
}

function controlCase(rng: Rng): ControlInput {
  const base: ControlInput = {
    side: rng.pick(['client', 'server'] as const),
    clientSeed: seedOf(rng),
    serverSeed: seedOf(rng),
    pinnedSeed: Buffer.alloc(0),
    clientEph: rng.bytes(32),
    clientNonce: rng.bytes(32),
    serverEph: rng.bytes(32),
    serverNonce: rng.bytes(32),
    hello: Buffer.alloc(0),
    honestHello: true,
    signedByServer: false,
    auth: Buffer.alloc(0),
    honestAuth: true,
    order: 'normal',
  };
  base.pinnedSeed = rng.chance(0.9) ? base.serverSeed : seedOf(rng);
  const ch = client(base).hello();
  if (base.side === 'client') {
    const { hello } = server(base).onClientHello(ch);
    const r = rng.int(10);
    if (r < 2) {
      base.hello = encodeMessage(hello);
    } else if (r < 5) {
      // A hostile server that holds the pinned key signs what it likes.
      const unsigned = {
        version: rng.chance(0.9) ? hello.version : rng.pick([0, PROTOCOL_VERSION + 1, 0xffff]),
        identityKey: hello.identityKey,
        ephemeralKey: rng.chance(0.8) ? rng.pick(WEAK_X25519) : rng.bytes(32),
        nonce: rng.chance(0.5) ? hello.nonce : ch.nonce,
      };
      const evil: ServerHello = {
        type: 'ServerHello',
        ...unsigned,
        signature: signServerHello(identityOf(base.serverSeed), ch, unsigned),
      };
      base.hello = encodeMessage(evil);
      base.honestHello = false;
      base.signedByServer = !WEAK_X25519.some((w) => w.equals(unsigned.ephemeralKey));
    } else {
      base.hello = mutateMessage(hello, rng);
      base.honestHello = base.hello.equals(encodeMessage(hello));
    }
    return base;
  }
  // Server side: the ClientHello, then the ClientAuth.
  const r = rng.int(10);
  let sentHello: ClientHello = ch;
  if (r < 3) {
    base.hello = encodeMessage(ch);
  } else if (r < 6) {
    // A weak ephemeral key, or another identity than the one that will sign.
    sentHello = {
      ...ch,
      ephemeralKey: rng.chance(0.7) ? rng.pick(WEAK_X25519) : ch.ephemeralKey,
      identityKey: rng.chance(0.3) ? identityOf(seedOf(rng)).publicRaw : ch.identityKey,
    };
    base.hello = encodeMessage(sentHello);
    base.honestHello =
      sentHello.ephemeralKey.equals(ch.ephemeralKey) && sentHello.identityKey.equals(ch.identityKey);
  } else {
    base.hello = mutateMessage(ch, rng);
    base.honestHello = base.hello.equals(encodeMessage(ch));
    sentHello = decodeAs(decodeClientMessage, base.hello, 'ClientHello') ?? ch;
  }
  // The server's answer to the hello it got is deterministic (fixed ephemeral and nonce), so the
  // client can sign the transcript it will really be judged on.
  let serverHello: ServerHello | undefined;
  try {
    serverHello = server(base).onClientHello(sentHello).hello;
  } catch (err) {
    expectCoded(err);
  }
  const honest = serverHello
    ? encodeMessage({
        type: 'ClientAuth',
        signature: signClientAuth(identityOf(base.clientSeed), sentHello, serverHello),
      })
    : encodeMessage({ type: 'ClientAuth', signature: rng.bytes(64) });
  if (rng.chance(0.6)) {
    base.auth = honest;
  } else {
    const sig = rng.int(3);
    const msg = { type: 'ClientAuth', signature: honest.subarray(6) } as const;
    base.auth = sig === 0 ? mutateMessage(msg, rng) : havoc(honest, rng, 2);
    base.honestAuth = base.auth.equals(honest);
  }
  base.honestAuth &&= serverHello !== undefined;
  base.order = rng.weighted([
    [18, 'normal'],
    [1, 'auth-first'],
    [1, 'hello-twice'],
  ] as const);
  return base;
}

function runControl(input: ControlInput): void {
  if (input.side === 'client') {
    const sh = decodeAs(decodeServerMessage, input.hello, 'ServerHello');
    if (!sh) return;
    const c = client(input);
    let result: ReturnType<ClientHandshake['onServerHello']>;
    try {
      result = c.onServerHello(sh);
    } catch (err) {
      expectCoded(err);
      return;
    }
    if (!input.pinnedSeed.equals(input.serverSeed)) {
      throw new OracleError('the client accepted a server key it does not pin');
    }
    if (input.signedByServer) return;
    if (!input.honestHello) {
      throw new OracleError(
        'the client accepted a ServerHello that is not the honest one (or has a weak key)',
      );
    }
    // The honest server derives the same keys.
    const s = server(input);
    const { keys } = s.onClientHello(c.hello());
    if (!sameKeys(result.keys, keys) || !result.keys.sessionId.equals(keys.sessionId)) {
      throw new OracleError('client and server derived different keys');
    }
    return;
  }
  const s = server(input);
  const ch = decodeAs(decodeClientMessage, input.hello, 'ClientHello');
  const auth = decodeAs(decodeClientMessage, input.auth, 'ClientAuth');
  if (input.order === 'auth-first' && auth) {
    try {
      s.onClientAuth(auth);
      throw new OracleError('ServerHandshake accepted ClientAuth before any ClientHello');
    } catch (err) {
      if (err instanceof OracleError) throw err;
      expectCoded(err);
    }
  }
  if (!ch) return;
  try {
    s.onClientHello(ch);
    if (input.order === 'hello-twice') s.onClientHello(ch);
  } catch (err) {
    expectCoded(err);
    return;
  }
  if (!auth) return;
  let clientKey: Buffer;
  try {
    ({ clientKey } = s.onClientAuth(auth));
  } catch (err) {
    expectCoded(err);
    return;
  }
  if (input.order === 'hello-twice') return;
  if (!input.honestAuth || !clientKey.equals(identityOf(input.clientSeed).publicRaw)) {
    throw new OracleError(
      `the server accepted a ClientAuth that the client's key did not make (honest hello: ${input.honestHello})`,
    );
  }
}

/** The control handshake, both sides. */
export const handshakeControl: Target<ControlInput> = {
  name: 'handshake-control',
  about:
    'ClientHandshake vs hostile ServerHellos (mutated, or signed with weak X25519 keys), ServerHandshake vs mutated ClientHellos and ClientAuths, call order abuse; only honest bytes succeed, keys agree',
  weight: 15_000,
  hangMs: 5000,
  setup: () => {
    seeds();
    checkSigning();
  },
  generate: controlCase,
  execute: runControl,
};

interface DataInput {
  side: 'client' | 'server';
  sessionId: Buffer;
  secret: Buffer;
  clientNonce: Buffer;
  serverNonce: Buffer;
  /** What the side under test receives. */
  message: Buffer;
  honest: boolean;
}

function dataCase(rng: Rng): DataInput {
  const input: DataInput = {
    side: rng.pick(['client', 'server'] as const),
    sessionId: rng.bytes(16),
    secret: rng.bytes(32),
    clientNonce: rng.bytes(32),
    serverNonce: rng.bytes(32),
    message: Buffer.alloc(0),
    honest: true,
  };
  const dc = new DataClientHandshake({
    sessionId: input.sessionId,
    sessionSecret: input.secret,
    nonce: input.clientNonce,
  });
  const honest =
    input.side === 'client' ? acceptDataHello(dc.hello(), input.secret, input.serverNonce).ack : dc.hello();
  if (rng.chance(0.3)) {
    input.message = encodeMessage(honest);
  } else {
    input.message = mutateMessage(honest, rng);
    input.honest = input.message.equals(encodeMessage(honest));
  }
  return input;
}

function runData(input: DataInput): void {
  const dc = new DataClientHandshake({
    sessionId: input.sessionId,
    sessionSecret: input.secret,
    nonce: input.clientNonce,
  });
  if (input.side === 'client') {
    const ack = decodeAs(decodeServerMessage, input.message, 'DataHelloAck');
    if (!ack) return;
    let keys: ChannelKeys;
    try {
      keys = dc.onAck(ack);
    } catch (err) {
      expectCoded(err);
      return;
    }
    const server = acceptDataHello(dc.hello(), input.secret, input.serverNonce).keys;
    if (sameKeys(keys, server) !== input.honest) {
      throw new OracleError(
        `data-channel keys ${input.honest ? 'differ for the honest ack' : 'agree although the ack was changed'}`,
      );
    }
    return;
  }
  const hello = decodeAs(decodeClientMessage, input.message, 'DataHello');
  if (!hello) return;
  let keys: ChannelKeys;
  try {
    keys = acceptDataHello(hello, input.secret, input.serverNonce).keys;
  } catch (err) {
    expectCoded(err);
    return;
  }
  const client = dc.onAck({ type: 'DataHelloAck', version: PROTOCOL_VERSION, nonce: input.serverNonce });
  if (sameKeys(keys, client) !== input.honest) {
    throw new OracleError(
      `data-channel keys ${input.honest ? 'differ for the honest hello' : 'agree although the hello was changed'}`,
    );
  }
}

/** The data-channel handshake, both sides. */
export const handshakeData: Target<DataInput> = {
  name: 'handshake-data',
  about:
    'DataClientHandshake.onAck and acceptDataHello on mutated DataHelloAcks and DataHellos; keys agree exactly when the bytes are honest',
  weight: 40_000,
  hangMs: 2000,
  setup: () => void seeds(),
  generate: dataCase,
  execute: runData,
};
