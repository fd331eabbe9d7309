/**
 * The message decoders of both directions, fed mutated plaintexts of every message type.
 * Properties: only coded errors; whatever decodes re-encodes to exactly the same bytes (the format
 * is canonical, so a lenient decoder shows up as a mismatch).
 */
import {
  decodeClientMessage,
  decodeMessage,
  decodeServerMessage,
  encodeMessage,
  type Message,
} from '../../src/protocol/messages.js';
import { fieldsOf, havoc, joinFields, mutateFields } from '../lib/mutate.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import type { Rng } from '../lib/rng.js';
import { seedMessage, seeds } from '../lib/seeds.js';
import type { Target } from '../lib/target.js';

/** The decoders by the side whose messages they read. */
export const DECODERS = {
  client: decodeClientMessage,
  server: decodeServerMessage,
  any: decodeMessage,
} as const satisfies Record<string, (p: Buffer) => Message>;
export type DecoderName = keyof typeof DECODERS;

/** A mutated plaintext: a varied sample split into fields, changed, joined, sometimes havocked. */
export function mutatedPlaintext(rng: Rng): Buffer {
  const r = rng.int(20);
  if (r === 0) return rng.bytes(rng.smallLen(96));
  const msg = seedMessage(rng);
  if (r === 1) return encodeMessage(msg);
  let fields = fieldsOf(msg);
  if (r < 17) fields = mutateFields(fields, rng, seeds().donors);
  let out = joinFields(fields);
  if (r >= 15) out = havoc(out, rng);
  return out;
}

/** Decodes one plaintext; checks the round trip when it decodes. */
export function decodeChecked(decoder: DecoderName, plaintext: Buffer): Message | undefined {
  let msg: Message;
  try {
    msg = DECODERS[decoder](plaintext);
  } catch (err) {
    expectCoded(err);
    return undefined;
  }
  let again: Buffer;
  try {
    again = encodeMessage(msg);
  } catch (err) {
    throw new OracleError(`decoded ${msg.type} cannot be encoded again: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!again.equals(plaintext)) {
    throw new OracleError(
      `${msg.type} is not canonical: decoded from ${plaintext.toString('hex')}, re-encodes as ${again.toString('hex')}`,
    );
  }
  return msg;
}

interface MessageInput {
  decoder: DecoderName;
  plaintext: Buffer;
}

function target(name: string, decoder: DecoderName, weight: number, fn: string): Target<MessageInput> {
  return {
    name,
    about: `${fn} on mutated plaintexts of every message type; only coded errors, exact round trip`,
    weight,
    hangMs: 2000,
    setup: () => void seeds(),
    generate: (rng) => ({
      decoder: rng.chance(0.9) ? decoder : 'any',
      plaintext: mutatedPlaintext(rng),
    }),
    execute: (input) => void decodeChecked(input.decoder, input.plaintext),
  };
}

/** Messages a client sends, as the server reads them. */
export const messagesClient = target('messages-client', 'client', 120_000, 'decodeClientMessage');
/** Messages a server sends, as the client reads them. */
export const messagesServer = target('messages-server', 'server', 120_000, 'decodeServerMessage');
