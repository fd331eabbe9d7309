/**
 * The handshakes as pure state machines (no sockets): the control-channel handshake (Ed25519
 * identities, X25519 ephemeral exchange, signatures over the whole transcript) and the data-channel
 * handshake (symmetric only: fresh nonces from both sides keyed by the session's secret).
 * docs/PROTOCOL.md, "Handshake" and "Data channels", is the byte-level description.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { ProtocolError } from './errors.js';
import type { DirectionKeys } from './frame-codec.js';
import {
  type ClientAuth,
  type ClientHello,
  type DataHello,
  type DataHelloAck,
  encodeMessage,
  encodeServerHelloUnsigned,
  PROTOCOL_VERSION,
  SESSION_ID_LEN,
  type ServerHello,
} from './messages.js';

/** Domain-separation strings; each ends in a NUL byte on the wire. */
export const CONTEXT = {
  serverSignature: 'MTT-v1 server hello',
  clientSignature: 'MTT-v1 client auth',
  controlKeys: 'MTT-v1 control keys',
  dataKeys: 'MTT-v1 data keys',
} as const;

/** What the handshake needs of an identity: the Ed25519 private key and its raw public key. */
export interface HandshakeIdentity {
  privateKey: KeyObject;
  publicRaw: Buffer;
}

/** Keys of an authenticated channel, from this side's point of view. */
export interface ChannelKeys {
  send: DirectionKeys;
  receive: DirectionKeys;
}

/** What a finished control handshake gives both sides. */
export interface SessionKeys extends ChannelKeys {
  /** Public handle of the session, sent in DataHello. */
  sessionId: Buffer;
  /** Secret that data channels prove knowledge of. Never logged. */
  sessionSecret: Buffer;
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An Ed25519 public KeyObject from its 32 raw bytes. */
export function ed25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function x25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** An X25519 key pair: random, or from a fixed secret (test vectors). */
function x25519Pair(secret?: Buffer): { privateKey: KeyObject; publicRaw: Buffer } {
  const privateKey = secret
    ? createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' })
    : generateKeyPairSync('x25519').privateKey;
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicRaw: spki.subarray(X25519_SPKI_PREFIX.length) };
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function withContext(context: string, digest: Buffer): Buffer {
  return Buffer.concat([Buffer.from(context + '\0', 'latin1'), digest]);
}

function sharedSecret(privateKey: KeyObject, peerRaw: Buffer): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: x25519Public(peerRaw) });
  } catch (cause) {
    throw new ProtocolError('ERR_WEAK_KEY', 'peer ephemeral key is not a usable X25519 key', { cause });
  }
  // A low-order point gives an all-zero secret; refuse it rather than key a channel with it.
  if (shared.every((b) => b === 0))
    throw new ProtocolError('ERR_WEAK_KEY', 'peer ephemeral key is a low-order point');
  return shared;
}

function split72(okm: Buffer): { c2s: DirectionKeys; s2c: DirectionKeys } {
  return {
    c2s: { key: okm.subarray(0, 32), nonceBase: okm.subarray(64, 68) },
    s2c: { key: okm.subarray(32, 64), nonceBase: okm.subarray(68, 72) },
  };
}

/** The control key schedule: HKDF-SHA256(ikm = X25519 secret, salt = transcript hash). */
export function deriveControlKeys(
  shared: Buffer,
  transcriptHash: Buffer,
  side: 'client' | 'server',
): SessionKeys {
  const okm = Buffer.from(hkdfSync('sha256', shared, transcriptHash, CONTEXT.controlKeys, 120));
  const { c2s, s2c } = split72(okm);
  return {
    send: side === 'client' ? c2s : s2c,
    receive: side === 'client' ? s2c : c2s,
    sessionSecret: okm.subarray(72, 104),
    sessionId: okm.subarray(104, 104 + SESSION_ID_LEN),
  };
}

/** The data-channel key schedule: HKDF-SHA256(ikm = session secret, salt = SHA-256(DataHello | DataHelloAck)). */
export function deriveDataKeys(
  sessionSecret: Buffer,
  dataHello: DataHello,
  ack: DataHelloAck,
  side: 'client' | 'server',
): ChannelKeys {
  const salt = sha256(encodeMessage(dataHello), encodeMessage(ack));
  const okm = Buffer.from(hkdfSync('sha256', sessionSecret, salt, CONTEXT.dataKeys, 72));
  const { c2s, s2c } = split72(okm);
  return side === 'client' ? { send: c2s, receive: s2c } : { send: s2c, receive: c2s };
}

function checkVersion(version: number, peer: 'server' | 'client'): void {
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'ERR_VERSION_MISMATCH',
      `the ${peer} speaks protocol version ${version}, this ${peer === 'server' ? 'client' : 'server'} speaks ${PROTOCOL_VERSION}; upgrade the older side`,
    );
  }
}

/** Fixed values for test vectors; production code leaves them out. */
export interface HandshakeFixtures {
  ephemeralSecret?: Buffer;
  nonce?: Buffer;
}

/** The client side of the control handshake. */
export class ClientHandshake {
  readonly #identity: HandshakeIdentity;
  readonly #eph: { privateKey: KeyObject; publicRaw: Buffer };
  readonly #hello: ClientHello;
  readonly #checkServerKey: (raw: Buffer) => void;

  /** `checkServerKey` throws (ERR_SERVER_KEY_MISMATCH) when the server's identity is not the pinned one. */
  constructor(
    opts: { identity: HandshakeIdentity; checkServerKey: (raw: Buffer) => void } & HandshakeFixtures,
  ) {
    this.#identity = opts.identity;
    this.#checkServerKey = opts.checkServerKey;
    this.#eph = x25519Pair(opts.ephemeralSecret);
    this.#hello = {
      type: 'ClientHello',
      version: PROTOCOL_VERSION,
      identityKey: opts.identity.publicRaw,
      ephemeralKey: this.#eph.publicRaw,
      nonce: opts.nonce ?? randomBytes(32),
    };
  }

  /** The first message. */
  hello(): ClientHello {
    return this.#hello;
  }

  /** Verifies the ServerHello (version, signature, pinned key) and returns ClientAuth and the keys. */
  onServerHello(sh: ServerHello): { auth: ClientAuth; keys: SessionKeys; serverKey: Buffer } {
    checkVersion(sh.version, 'server');
    const ch = encodeMessage(this.#hello);
    const signed = withContext(CONTEXT.serverSignature, sha256(ch, encodeServerHelloUnsigned(sh)));
    let ok = false;
    try {
      ok = verify(null, signed, ed25519PublicKey(sh.identityKey), sh.signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new ProtocolError('ERR_BAD_SIGNATURE', "the server's hello signature does not verify");
    this.#checkServerKey(sh.identityKey);
    const th = sha256(ch, encodeMessage(sh));
    const keys = deriveControlKeys(sharedSecret(this.#eph.privateKey, sh.ephemeralKey), th, 'client');
    const signature = sign(null, withContext(CONTEXT.clientSignature, th), this.#identity.privateKey);
    return { auth: { type: 'ClientAuth', signature }, keys, serverKey: sh.identityKey };
  }
}

/** The server side of the control handshake. */
export class ServerHandshake {
  readonly #identity: HandshakeIdentity;
  readonly #fixtures: HandshakeFixtures;
  #clientHello: ClientHello | undefined;
  #transcriptHash: Buffer | undefined;

  constructor(opts: { identity: HandshakeIdentity } & HandshakeFixtures) {
    this.#identity = opts.identity;
    this.#fixtures = opts;
  }

  /** Answers a ClientHello with a signed ServerHello, and derives the keys. Throws ERR_VERSION_MISMATCH. */
  onClientHello(ch: ClientHello): { hello: ServerHello; keys: SessionKeys } {
    checkVersion(ch.version, 'client');
    const eph = x25519Pair(this.#fixtures.ephemeralSecret);
    const unsigned = {
      version: PROTOCOL_VERSION,
      identityKey: this.#identity.publicRaw,
      ephemeralKey: eph.publicRaw,
      nonce: this.#fixtures.nonce ?? randomBytes(32),
    };
    const chBytes = encodeMessage(ch);
    const signed = withContext(CONTEXT.serverSignature, sha256(chBytes, encodeServerHelloUnsigned(unsigned)));
    const hello: ServerHello = {
      type: 'ServerHello',
      ...unsigned,
      signature: sign(null, signed, this.#identity.privateKey),
    };
    this.#clientHello = ch;
    this.#transcriptHash = sha256(chBytes, encodeMessage(hello));
    const keys = deriveControlKeys(
      sharedSecret(eph.privateKey, ch.ephemeralKey),
      this.#transcriptHash,
      'server',
    );
    return { hello, keys };
  }

  /** Verifies the client's signature over the transcript; returns the client's identity key. */
  onClientAuth(auth: ClientAuth): { clientKey: Buffer } {
    const ch = this.#clientHello;
    const th = this.#transcriptHash;
    if (!ch || !th) throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', 'ClientAuth before ClientHello');
    let ok = false;
    try {
      ok = verify(
        null,
        withContext(CONTEXT.clientSignature, th),
        ed25519PublicKey(ch.identityKey),
        auth.signature,
      );
    } catch {
      ok = false;
    }
    if (!ok) throw new ProtocolError('ERR_BAD_SIGNATURE', "the client's signature does not verify");
    return { clientKey: ch.identityKey };
  }
}

/** The client side of a data-channel handshake. */
export class DataClientHandshake {
  readonly #hello: DataHello;
  readonly #secret: Buffer;

  constructor(opts: { sessionId: Buffer; sessionSecret: Buffer; nonce?: Buffer }) {
    this.#secret = opts.sessionSecret;
    this.#hello = {
      type: 'DataHello',
      version: PROTOCOL_VERSION,
      sessionId: opts.sessionId,
      nonce: opts.nonce ?? randomBytes(32),
    };
  }

  hello(): DataHello {
    return this.#hello;
  }

  /** Derives this channel's keys from the server's fresh nonce. */
  onAck(ack: DataHelloAck): ChannelKeys {
    checkVersion(ack.version, 'server');
    return deriveDataKeys(this.#secret, this.#hello, ack, 'client');
  }
}

/**
 * The server side of a data-channel handshake: answers with a fresh nonce and derives the keys. The
 * channel proves it belongs to the session when its first frame (DataConnReady) decrypts.
 */
export function acceptDataHello(
  hello: DataHello,
  sessionSecret: Buffer,
  nonce: Buffer = randomBytes(32),
): { ack: DataHelloAck; keys: ChannelKeys } {
  checkVersion(hello.version, 'client');
  const ack: DataHelloAck = { type: 'DataHelloAck', version: PROTOCOL_VERSION, nonce };
  return { ack, keys: deriveDataKeys(sessionSecret, hello, ack, 'server') };
}
