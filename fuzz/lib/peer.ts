/**
 * What a hostile peer needs to speak validly where it wants to: identities from seeds, and the two
 * handshake signatures over chosen bytes (so a malicious but correctly keyed server can sign a
 * ServerHello with a weak ephemeral key, and a client can sign a transcript of its choosing).
 * checkSigning() proves at every start that these give the real handshake's signatures.
 */
import { createHash, type KeyObject, sign } from 'node:crypto';
import { identityFromSeed } from '../../src/identity/identity.js';
import { ClientHandshake, CONTEXT, ServerHandshake } from '../../src/protocol/handshake-machines.js';
import {
  type ClientHello,
  encodeMessage,
  encodeServerHelloUnsigned,
  type ServerHello,
} from '../../src/protocol/messages.js';

/** An identity as the handshakes take it. */
export interface PeerIdentity {
  privateKey: KeyObject;
  publicRaw: Buffer;
}

const identities = new Map<string, PeerIdentity>();
/** The identity of a 32-byte seed (cached: key import is not free). */
export function identityOf(seed: Buffer): PeerIdentity {
  const k = seed.toString('hex');
  let id = identities.get(k);
  if (!id) {
    const full = identityFromSeed(seed);
    id = { privateKey: full.privateKey, publicRaw: full.publicRaw };
    if (identities.size > 256) identities.clear();
    identities.set(k, id);
  }
  return id;
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function withContext(context: string, digest: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${context}\0`, 'latin1'), digest]);
}

/** The server's signature over a ClientHello and the unsigned part of a ServerHello. */
export function signServerHello(
  server: PeerIdentity,
  clientHello: ClientHello,
  unsigned: Omit<ServerHello, 'type' | 'signature'>,
): Buffer {
  const digest = sha256(encodeMessage(clientHello), encodeServerHelloUnsigned(unsigned));
  return sign(null, withContext(CONTEXT.serverSignature, digest), server.privateKey);
}

/** The client's signature over the transcript of both hellos. */
export function signClientAuth(
  client: PeerIdentity,
  clientHello: ClientHello,
  serverHello: ServerHello,
): Buffer {
  const digest = sha256(encodeMessage(clientHello), encodeMessage(serverHello));
  return sign(null, withContext(CONTEXT.clientSignature, digest), client.privateKey);
}

/** Throws unless both signatures equal the real handshake's (Ed25519 is deterministic). */
export function checkSigning(): void {
  const client = identityOf(Buffer.alloc(32, 1));
  const server = identityOf(Buffer.alloc(32, 2));
  const ch = new ClientHandshake({
    identity: client,
    checkServerKey: () => {},
    ephemeralSecret: Buffer.alloc(32, 3),
    nonce: Buffer.alloc(32, 4),
  });
  const sh = new ServerHandshake({
    identity: server,
    ephemeralSecret: Buffer.alloc(32, 5),
    nonce: Buffer.alloc(32, 6),
  });
  const { hello } = sh.onClientHello(ch.hello());
  const { auth } = ch.onServerHello(hello);
  if (
    !signServerHello(server, ch.hello(), hello).equals(hello.signature) ||
    !signClientAuth(client, ch.hello(), hello).equals(auth.signature)
  ) {
    throw new Error('fuzz/lib/peer.ts no longer signs like the handshake; the transcript changed, update it');
  }
}

/** X25519 public values that give no shared secret (small order, and p-1, p, p+1 encodings): a
 * peer sending one must be refused. */
export const WEAK_X25519: readonly Buffer[] = [
  Buffer.alloc(32, 0),
  Buffer.concat([Buffer.of(1), Buffer.alloc(31, 0)]),
  Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
  Buffer.from('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'hex'),
  Buffer.from('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'),
  Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'),
  Buffer.from('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'),
];
