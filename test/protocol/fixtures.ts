/**
 * Shared test fixtures for the protocol tests: one sample of every message, keys, codec pairs and a
 * helper that asserts a coded ProtocolError.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import {
  type CompressionMode,
  type DirectionKeys,
  FrameDecoder,
  FrameEncoder,
} from '../../src/protocol/frame-codec.js';
import { decodeMessage, type Message, MsgType } from '../../src/protocol/messages.js';

const b = (hex: string): Buffer => Buffer.from(hex, 'hex');

/** One sample of every message type, plus the flag variants. */
export function sampleMessages(): Message[] {
  return [
    {
      type: 'ClientHello',
      version: 2,
      identityKey: Buffer.alloc(32, 0x11),
      ephemeralKey: Buffer.alloc(32, 0x22),
      nonce: Buffer.alloc(32, 0x33),
    },
    {
      type: 'ServerHello',
      version: 2,
      identityKey: Buffer.alloc(32, 0x44),
      ephemeralKey: Buffer.alloc(32, 0x55),
      nonce: Buffer.alloc(32, 0x66),
      signature: Buffer.alloc(64, 0x77),
    },
    { type: 'ClientAuth', signature: Buffer.alloc(64, 0x88) },
    { type: 'AuthOk', heartbeatMs: 30_000, allowedPorts: [], maxConnections: 0, rateLimit: 0 },
    {
      type: 'AuthOk',
      heartbeatMs: 5_000,
      allowedPorts: [
        { low: 1024, high: 2048 },
        { low: 8080, high: 8080 },
      ],
      maxConnections: 100,
      rateLimit: 1_250_000,
    },
    { type: 'AuthFail', reason: 'unknown_key', version: 2, message: 'key SHA256:abc is not allowed' },
    { type: 'AuthFail', reason: 'internal', version: 2, message: '' },
    { type: 'AuthFail', reason: 'in_use', version: 2, message: 'in use from 192.0.2.1:4000 since …' },
    { type: 'DataHello', version: 2, sessionId: Buffer.alloc(16, 0x99), nonce: Buffer.alloc(32, 0xaa) },
    { type: 'DataHelloAck', version: 2, nonce: Buffer.alloc(32, 0xbb) },
    {
      type: 'OpenTunnel',
      tunnelId: 3,
      remotePort: 8080,
      name: 'wéb',
      compress: true,
      maxConnections: 0,
      rateLimit: 0,
      permitFrom: [],
    },
    {
      type: 'OpenTunnel',
      tunnelId: 5,
      remotePort: 8081,
      name: 'logs',
      compress: 'zstd',
      maxConnections: 0,
      rateLimit: 0,
      permitFrom: [],
    },
    {
      type: 'OpenTunnel',
      tunnelId: 4,
      remotePort: 2222,
      name: 'ssh',
      compress: false,
      maxConnections: 10,
      rateLimit: 65_536,
      permitFrom: [
        { family: 4, prefix: 24, address: b('c0000200') },
        { family: 6, prefix: 32, address: b('20010db8000000000000000000000000') },
      ],
    },
    { type: 'CloseTunnel', tunnelId: 0xffff_ffff },
    {
      type: 'TunnelStatus',
      tunnelId: 3,
      state: 'active',
      reason: 'none',
      port: 8080,
      address: 'example.net:8080',
      message: '',
      maxConnections: 10,
      rateLimit: 0,
      zstd: true,
    },
    {
      type: 'TunnelStatus',
      tunnelId: 4,
      state: 'refused',
      reason: 'port_not_allowed',
      port: 0,
      address: '',
      message: 'port 22 is not allowed',
      maxConnections: 0,
      rateLimit: 0,
      zstd: false,
    },
    {
      type: 'IncomingConn',
      connId: 42,
      tunnelId: 3,
      family: 4,
      srcAddr: b('cb007109'),
      srcPort: 51000,
      dstAddr: b('c6336401'),
      dstPort: 8080,
    },
    {
      type: 'IncomingConn',
      connId: 43,
      tunnelId: 3,
      family: 6,
      srcAddr: b('20010db8000000000000000000000001'),
      srcPort: 50000,
      dstAddr: b('20010db8000000000000000000000002'),
      dstPort: 443,
    },
    { type: 'ChannelsWanted', count: 3 },
    { type: 'Heartbeat', reply: false, seq: 7 },
    { type: 'Heartbeat', reply: true, seq: 0xffff_ffff },
    { type: 'Error', streamId: 42, code: 'target_unreachable', message: 'ECONNREFUSED' },
    { type: 'Error', streamId: 0, code: 'reset', message: 'connection reset' },
    { type: 'Data', fin: false, payload: b('00ff10') },
    { type: 'Data', fin: true, payload: Buffer.alloc(0) },
    { type: 'Data', fin: false, payload: Buffer.from('compressible '.repeat(200)) },
  ];
}

/** Every type code, so tests can check that the samples cover them all. */
export const ALL_TYPE_CODES: readonly number[] = Object.values(MsgType);

/** Fresh random keys for one direction. */
export function randomKeys(): DirectionKeys {
  return { key: randomBytes(32), nonceBase: randomBytes(4) };
}

/** A keyed encoder and a decoder that shares its keys. */
export function keyedPair(
  compression: CompressionMode = 'auto',
  keys: DirectionKeys = randomKeys(),
): { encoder: FrameEncoder; decoder: FrameDecoder<Message>; keys: DirectionKeys } {
  const encoder = new FrameEncoder({ compression });
  const decoder = new FrameDecoder(decodeMessage);
  encoder.setKeys(keys);
  decoder.setKeys(keys);
  return { encoder, decoder, keys };
}

/** Takes every whole message out of a decoder. */
export function drain<M extends Message>(decoder: FrameDecoder<M>): M[] {
  const out: M[] = [];
  for (let m = decoder.next(); m !== undefined; m = decoder.next()) out.push(m);
  return out;
}

/** Asserts that `fn` throws (or `promise` rejects with) a ProtocolError with one of `codes`. */
export function assertCode(err: unknown, ...codes: ProtocolErrorCode[]): ProtocolError {
  assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
  assert.ok(codes.includes(err.code), `expected ${codes.join(' or ')}, got ${err.code}: ${err.message}`);
  return err;
}

/** Runs `fn` and returns the ProtocolError it throws, asserting its code. */
export function throwsCode(fn: () => unknown, ...codes: ProtocolErrorCode[]): ProtocolError {
  try {
    fn();
  } catch (err) {
    return assertCode(err, ...codes);
  }
  assert.fail(`expected a ProtocolError ${codes.join(' or ')}, nothing was thrown`);
}

/** Awaits `p` and returns the ProtocolError it rejects with, asserting its code. */
export async function rejectsCode(
  p: Promise<unknown>,
  ...codes: ProtocolErrorCode[]
): Promise<ProtocolError> {
  try {
    await p;
  } catch (err) {
    return assertCode(err, ...codes);
  }
  assert.fail(`expected a ProtocolError ${codes.join(' or ')}, the promise resolved`);
}

/** The 12-byte nonce of a keyed frame: nonce_base || counter u64 BE. */
export function frameNonce(nonceBase: Buffer, counter: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonceBase.copy(nonce, 0, 0, 4);
  nonce.writeBigUInt64BE(counter, 4);
  return nonce;
}

/** Encrypts a hand-made body into a keyed frame with node:crypto directly, mirroring the codec. */
export function sealFrame(keys: DirectionKeys, counter: bigint, body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length + 16);
  const c = createCipheriv('chacha20-poly1305', keys.key, frameNonce(keys.nonceBase, counter), {
    authTagLength: 16,
  });
  c.setAAD(header, { plaintextLength: body.length });
  const ct = Buffer.concat([c.update(body), c.final()]);
  return Buffer.concat([header, ct, c.getAuthTag()]);
}

/** Decrypts a keyed frame with node:crypto directly; returns its body (codec byte first). */
export function openFrame(keys: DirectionKeys, counter: bigint, frame: Buffer): Buffer {
  const len = frame.readUInt32BE(0);
  assert.equal(frame.length, 4 + len, 'frame length header matches the frame');
  const d = createDecipheriv('chacha20-poly1305', keys.key, frameNonce(keys.nonceBase, counter), {
    authTagLength: 16,
  });
  d.setAAD(frame.subarray(0, 4), { plaintextLength: len - 16 });
  d.setAuthTag(frame.subarray(4 + len - 16));
  return Buffer.concat([d.update(frame.subarray(4, 4 + len - 16)), d.final()]);
}
