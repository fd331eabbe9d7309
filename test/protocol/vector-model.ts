/**
 * The test vectors of docs/PROTOCOL.md: how their blocks are written and parsed, and how every output
 * is computed from a block's inputs with the real code (plus node:crypto directly for the documented
 * intermediate values). vectors.test.ts checks the page against this; the page's blocks were printed
 * with `renderBlock` (see the comment at the end of this file).
 */
import {
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
} from 'node:crypto';
import { identityFromSeed } from '../../src/identity/index.js';
import { type DirectionKeys, FrameDecoder, FrameEncoder } from '../../src/protocol/frame-codec.js';
import {
  acceptDataHello,
  ClientHandshake,
  DataClientHandshake,
  ServerHandshake,
} from '../../src/protocol/handshake-machines.js';
import {
  decodeMessage,
  encodeMessage,
  encodeServerHelloUnsigned,
  type Message,
} from '../../src/protocol/messages.js';

/** One `key: value` line of a vector block, in order. */
export type Entry = [key: string, value: string];

/** A vector block: its name (from the fence's info string) and entries. */
export interface VectorBlock {
  name: string;
  entries: Entry[];
}

const FENCE = /^```vector ([a-z0-9-]+)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;

/**
 * Parses every ```vector NAME block. Inside one: `key: value` lines; indented lines continue the
 * previous value (for long hex); blank lines and `#` comments are skipped.
 */
export function parseVectorBlocks(markdown: string): VectorBlock[] {
  const blocks: VectorBlock[] = [];
  for (const m of markdown.matchAll(FENCE)) {
    const entries: Entry[] = [];
    for (const line of m[2]!.split('\n')) {
      if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
      if (/^\s/.test(line)) {
        const last = entries.at(-1);
        if (!last) throw new Error(`vector ${m[1]}: continuation line before any key: ${line}`);
        last[1] += line.trim();
        continue;
      }
      const kv = /^([a-z0-9_]+):\s*(.*)$/.exec(line);
      if (!kv) throw new Error(`vector ${m[1]}: cannot parse line: ${line}`);
      entries.push([kv[1]!, kv[2]!.trim()]);
    }
    blocks.push({ name: m[1]!, entries });
  }
  return blocks;
}

/** Hex of a value, with any spaces removed. */
export function hexOf(value: string): Buffer {
  const clean = value.replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/.test(clean)) throw new Error(`not lower-case hex: ${value}`);
  return Buffer.from(clean, 'hex');
}

/** A message as JSON: Buffer fields become "hex:..." strings. */
export function messageToJson(msg: Message): string {
  return JSON.stringify(msg, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') {
      return `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
    }
    return v;
  });
}

/** The inverse of messageToJson. */
export function messageFromJson(json: string): Message {
  return JSON.parse(json, (_k, v: unknown) =>
    typeof v === 'string' && v.startsWith('hex:') ? Buffer.from(v.slice(4), 'hex') : v,
  ) as Message;
}

/** Reads a block's inputs. */
class Inputs {
  readonly #map: Map<string, string>;
  constructor(entries: Entry[]) {
    this.#map = new Map(entries);
  }
  hex(key: string): Buffer {
    const v = this.#map.get(key);
    if (v === undefined) throw new Error(`missing input ${key}`);
    return hexOf(v);
  }
  int(key: string): number {
    const v = this.#map.get(key);
    if (v === undefined) throw new Error(`missing input ${key}`);
    return Number(v);
  }
  big(key: string): bigint {
    const v = this.#map.get(key);
    if (v === undefined) throw new Error(`missing input ${key}`);
    return BigInt(v);
  }
  text(key: string): string {
    const v = this.#map.get(key);
    if (v === undefined) throw new Error(`missing input ${key}`);
    return v;
  }
}

/** What a vector kind reads and what it produces. */
export interface VectorKind {
  inputs: readonly string[];
  /** The outputs are interleaved with the inputs: compute() returns every entry of the block. */
  interleaved?: boolean;
  /** Computes every output (hex, or text for JSON and numbers), in the order they are printed. */
  compute(entries: Entry[]): Entry[];
}

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const ctx = (label: string, digest: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${label}\0`, 'latin1'), digest]);
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const x25519 = (secret: Buffer, peerPublic: Buffer): Buffer =>
  diffieHellman({
    privateKey: createPrivateKey({
      key: Buffer.concat([X25519_PKCS8, secret]),
      format: 'der',
      type: 'pkcs8',
    }),
    publicKey: createPublicKey({
      key: Buffer.concat([X25519_SPKI, peerPublic]),
      format: 'der',
      type: 'spki',
    }),
  });
const hkdf = (ikm: Buffer, salt: Buffer, info: string, len: number): Buffer =>
  Buffer.from(hkdfSync('sha256', ikm, salt, info, len));
const hex = (b: Buffer): string => b.toString('hex');

function keyedEncoder(keys: DirectionKeys, counter = 0n): FrameEncoder {
  const e = new FrameEncoder({ compression: 'never' });
  e.setKeys(keys, counter);
  return e;
}

/** The control-channel handshake: identities and ephemerals from seeds, everything else derived. */
const controlHandshake: VectorKind = {
  inputs: [
    'client_identity_seed',
    'server_identity_seed',
    'client_ephemeral_secret',
    'server_ephemeral_secret',
    'client_nonce',
    'server_nonce',
    'auth_ok',
  ],
  compute(entries) {
    const i = new Inputs(entries);
    const client = identityFromSeed(i.hex('client_identity_seed'));
    const server = identityFromSeed(i.hex('server_identity_seed'));
    const ch = new ClientHandshake({
      identity: client,
      checkServerKey: (raw) => {
        if (!raw.equals(server.publicRaw)) throw new Error('unexpected server key');
      },
      ephemeralSecret: i.hex('client_ephemeral_secret'),
      nonce: i.hex('client_nonce'),
    });
    const sh = new ServerHandshake({
      identity: server,
      ephemeralSecret: i.hex('server_ephemeral_secret'),
      nonce: i.hex('server_nonce'),
    });
    const clientHello = ch.hello();
    const { hello: serverHello, keys: serverKeys } = sh.onClientHello(clientHello);
    const { auth, keys: clientKeys } = ch.onServerHello(serverHello);
    const { clientKey } = sh.onClientAuth(auth);
    if (!clientKey.equals(client.publicRaw)) throw new Error('server saw another client key');
    if (!clientKeys.sessionSecret.equals(serverKeys.sessionSecret)) throw new Error('sides disagree');

    const chPlain = encodeMessage(clientHello);
    const shUnsigned = encodeServerHelloUnsigned(serverHello);
    const shPlain = encodeMessage(serverHello);
    const transcriptHash = sha256(chPlain, shPlain);
    const shared = x25519(i.hex('client_ephemeral_secret'), serverHello.ephemeralKey);
    const okm = hkdf(shared, transcriptHash, 'MTT-v1 control keys', 120);
    const clear = new FrameEncoder();
    const authOk = messageFromJson(i.text('auth_ok'));
    if (authOk.type !== 'AuthOk') throw new Error('auth_ok must be an AuthOk');
    return [
      ['client_identity_public', hex(client.publicRaw)],
      ['server_identity_public', hex(server.publicRaw)],
      ['client_ephemeral_public', hex(clientHello.ephemeralKey)],
      ['server_ephemeral_public', hex(serverHello.ephemeralKey)],
      ['client_hello_plaintext', hex(chPlain)],
      ['client_hello_frame', hex(clear.encodeToBuffer(clientHello))],
      ['server_signed_data', hex(ctx('MTT-v1 server hello', sha256(chPlain, shUnsigned)))],
      ['server_hello_plaintext', hex(shPlain)],
      ['server_hello_frame', hex(clear.encodeToBuffer(serverHello))],
      ['transcript_hash', hex(transcriptHash)],
      ['shared_secret', hex(shared)],
      ['okm', hex(okm)],
      ['key_c2s', hex(clientKeys.send.key)],
      ['key_s2c', hex(clientKeys.receive.key)],
      ['nonce_base_c2s', hex(clientKeys.send.nonceBase)],
      ['nonce_base_s2c', hex(clientKeys.receive.nonceBase)],
      ['session_secret', hex(clientKeys.sessionSecret)],
      ['session_id', hex(clientKeys.sessionId)],
      ['client_signed_data', hex(ctx('MTT-v1 client auth', transcriptHash))],
      ['client_auth_plaintext', hex(encodeMessage(auth))],
      ['client_auth_frame', hex(keyedEncoder(clientKeys.send).encodeToBuffer(auth))],
      ['auth_ok_plaintext', hex(encodeMessage(authOk))],
      ['auth_ok_frame', hex(keyedEncoder(serverKeys.send).encodeToBuffer(authOk))],
    ];
  },
};

/** The data-channel handshake and its first keyed frames. */
const dataHandshake: VectorKind = {
  inputs: ['session_secret', 'session_id', 'client_nonce', 'server_nonce', 'incoming_conn'],
  compute(entries) {
    const i = new Inputs(entries);
    const secret = i.hex('session_secret');
    const dc = new DataClientHandshake({
      sessionId: i.hex('session_id'),
      sessionSecret: secret,
      nonce: i.hex('client_nonce'),
    });
    const hello = dc.hello();
    const { ack, keys: serverKeys } = acceptDataHello(hello, secret, i.hex('server_nonce'));
    const clientKeys = dc.onAck(ack);
    if (!clientKeys.send.key.equals(serverKeys.receive.key)) throw new Error('sides disagree');
    const helloPlain = encodeMessage(hello);
    const ackPlain = encodeMessage(ack);
    const salt = sha256(helloPlain, ackPlain);
    const okm = hkdf(secret, salt, 'MTT-v1 data keys', 72);
    const clear = new FrameEncoder();
    const proof: Message = { type: 'Heartbeat', reply: false, seq: 0 };
    const keepalive: Message = { type: 'Heartbeat', reply: false, seq: 1 };
    const incoming = messageFromJson(i.text('incoming_conn'));
    if (incoming.type !== 'IncomingConn') throw new Error('incoming_conn must be an IncomingConn');
    const c2s = keyedEncoder(clientKeys.send);
    const proofFrame = c2s.encodeToBuffer(proof);
    const keepaliveFrame = c2s.encodeToBuffer(keepalive);
    return [
      ['data_hello_plaintext', hex(helloPlain)],
      ['data_hello_frame', hex(clear.encodeToBuffer(hello))],
      ['data_hello_ack_plaintext', hex(ackPlain)],
      ['data_hello_ack_frame', hex(clear.encodeToBuffer(ack))],
      ['salt', hex(salt)],
      ['okm', hex(okm)],
      ['key_c2s', hex(clientKeys.send.key)],
      ['key_s2c', hex(clientKeys.receive.key)],
      ['nonce_base_c2s', hex(clientKeys.send.nonceBase)],
      ['nonce_base_s2c', hex(clientKeys.receive.nonceBase)],
      ['proof_plaintext', hex(encodeMessage(proof))],
      ['proof_frame', hex(proofFrame)],
      ['keepalive_frame', hex(keepaliveFrame)],
      ['incoming_conn_plaintext', hex(encodeMessage(incoming))],
      ['incoming_conn_frame', hex(keyedEncoder(serverKeys.send).encodeToBuffer(incoming))],
    ];
  },
};

/** One stored keyed frame: key, nonce base, counter and message in; nonce, plaintext and frame out. */
const storedFrame: VectorKind = {
  inputs: ['key', 'nonce_base', 'counter', 'message'],
  compute(entries) {
    const i = new Inputs(entries);
    const keys = { key: i.hex('key'), nonceBase: i.hex('nonce_base') };
    const counter = i.big('counter');
    const msg = messageFromJson(i.text('message'));
    const nonce = Buffer.alloc(12);
    keys.nonceBase.copy(nonce);
    nonce.writeBigUInt64BE(counter, 4);
    const plaintext = encodeMessage(msg);
    const frame = keyedEncoder(keys, counter).encodeToBuffer(msg);
    return [
      ['nonce', hex(nonce)],
      ['plaintext', hex(plaintext)],
      ['body', hex(Buffer.concat([Buffer.of(0), plaintext]))],
      ['frame', hex(frame)],
    ];
  },
};

/**
 * A frame to decode (LZ4 output differs between implementations, so a compressed frame is only
 * checked one way): the frame is an input; its body, plaintext and message are outputs.
 */
const decodeFrame: VectorKind = {
  inputs: ['key', 'nonce_base', 'counter', 'frame'],
  compute(entries) {
    const i = new Inputs(entries);
    const keys = { key: i.hex('key'), nonceBase: i.hex('nonce_base') };
    const counter = i.big('counter');
    const frame = i.hex('frame');
    const nonce = Buffer.alloc(12);
    keys.nonceBase.copy(nonce);
    nonce.writeBigUInt64BE(counter, 4);
    const d = createDecipheriv('chacha20-poly1305', keys.key, nonce, { authTagLength: 16 });
    d.setAAD(frame.subarray(0, 4), { plaintextLength: frame.length - 20 });
    d.setAuthTag(frame.subarray(frame.length - 16));
    const body = Buffer.concat([d.update(frame.subarray(4, frame.length - 16)), d.final()]);
    const decoder = new FrameDecoder(decodeMessage);
    decoder.setKeys(keys, counter);
    decoder.push(frame);
    const msg = decoder.next();
    if (msg === undefined || decoder.buffered !== 0)
      throw new Error('frame did not decode to exactly one message');
    return [
      ['nonce', hex(nonce)],
      ['body', hex(body)],
      ['plaintext', hex(encodeMessage(msg))],
      ['message', messageToJson(msg)],
    ];
  },
};

/** A cleartext frame (handshake phase): message in, plaintext and frame out. */
const cleartextFrame: VectorKind = {
  inputs: ['message'],
  compute(entries) {
    const msg = messageFromJson(new Inputs(entries).text('message'));
    return [
      ['plaintext', hex(encodeMessage(msg))],
      ['frame', hex(new FrameEncoder().encodeToBuffer(msg))],
    ];
  },
};

/** Every message's plaintext: a `message` (JSON) line, then its `plaintext`, repeated. */
const messageEncodings: VectorKind = {
  inputs: ['message'],
  interleaved: true,
  compute(entries) {
    const out: Entry[] = [];
    for (const [k, v] of entries) {
      if (k !== 'message') continue;
      out.push([k, v], ['plaintext', hex(encodeMessage(messageFromJson(v)))]);
    }
    return out;
  },
};

/** Vector kinds by block-name prefix. */
export const VECTOR_KINDS: Record<string, VectorKind> = {
  'control-handshake': controlHandshake,
  'data-handshake': dataHandshake,
  'stored-frame': storedFrame,
  'decode-frame': decodeFrame,
  'cleartext-frame': cleartextFrame,
  messages: messageEncodings,
};

/** The kind of a block: its name, or its name's prefix before a `--` (e.g. stored-frame--fin). */
export function kindOf(name: string): VectorKind {
  const kind = VECTOR_KINDS[name.split('--')[0]!];
  if (!kind) throw new Error(`unknown vector kind ${name}`);
  return kind;
}

/** Prints a block for the page: inputs as given, then every output; long hex wraps at 64 digits. */
export function renderBlock(name: string, inputs: Entry[]): string {
  const kind = kindOf(name);
  const outputs = kind.compute(inputs);
  const lines = [`\`\`\`vector ${name}`];
  const width = Math.max(...[...inputs, ...outputs].map(([k]) => k.length)) + 2;
  const put = ([k, v]: Entry) => {
    if (/^[0-9a-f]+$/.test(v) && v.length > 64) {
      lines.push(`${k}:`);
      for (let o = 0; o < v.length; o += 64) lines.push(`  ${v.slice(o, o + 64)}`);
    } else {
      lines.push(`${`${k}:`.padEnd(width)}${v}`);
    }
  };
  if (kind.interleaved) {
    outputs.forEach(put);
  } else {
    lines.push('# inputs');
    inputs.forEach(put);
    lines.push('# outputs');
    outputs.forEach(put);
  }
  lines.push('```');
  return lines.join('\n');
}
