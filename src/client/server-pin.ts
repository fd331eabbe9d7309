/**
 * Which server key the client accepts: the key pinned in the config (a public key line or a SHA256:
 * fingerprint), else the one recorded in the known-servers file, else the first one seen (trust on
 * first use, like SSH), which is then recorded.
 */
import {
  fingerprint,
  formatPublicKeyLine,
  lookupKnownServer,
  parsePublicKeyLine,
  recordKnownServer,
} from '../identity/index.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Logger } from '../util/logger.js';
import type { StateStore } from './state-store.js';

/** The key a server must present: its raw bytes when known, else only its fingerprint. */
export interface ServerPin {
  raw?: Buffer;
  fingerprint: string;
  /** Where the pin comes from, for the mismatch message. */
  source: string;
}

/** The pin for `hostPort`, or undefined when none is set or recorded (trust on first use). */
export async function serverPin(
  serverKey: string | undefined,
  knownServersPath: string | undefined,
  hostPort: string,
): Promise<ServerPin | undefined> {
  if (serverKey) {
    if (serverKey.startsWith('SHA256:')) return { fingerprint: serverKey, source: 'serverKey in the config' };
    const { publicRaw } = parsePublicKeyLine(serverKey);
    return { raw: publicRaw, fingerprint: fingerprint(publicRaw), source: 'serverKey in the config' };
  }
  if (!knownServersPath) return undefined;
  const line = await lookupKnownServer(knownServersPath, hostPort);
  if (!line) return undefined;
  const { publicRaw } = parsePublicKeyLine(line);
  return { raw: publicRaw, fingerprint: fingerprint(publicRaw), source: knownServersPath };
}

/** Throws ERR_SERVER_KEY_MISMATCH unless `raw` is the pinned key. */
export function checkPin(pin: ServerPin, raw: Buffer, hostPort: string): void {
  const got = fingerprint(raw);
  const ok = pin.raw ? pin.raw.equals(raw) : pin.fingerprint === got;
  if (ok) return;
  throw new ProtocolError(
    'ERR_SERVER_KEY_MISMATCH',
    `the server at ${hostPort} presented key ${got}, but ${pin.fingerprint} is pinned (${pin.source}). ` +
      'If the server key really changed, update the pin; otherwise someone may be intercepting the connection.',
  );
}

/** Trusts a first-seen server key: says so, and records it when there is a known-servers file. */
export async function trustOnFirstUse(
  o: { knownServersPath?: string; log: Logger; state: StateStore },
  hostPort: string,
  raw: Buffer,
): Promise<void> {
  o.log.warn('trusting the server key on first use', { server: hostPort, fingerprint: fingerprint(raw) });
  o.state.event('warn', `trusted server key ${fingerprint(raw)} on first use`);
  if (!o.knownServersPath) return;
  try {
    await recordKnownServer(o.knownServersPath, hostPort, formatPublicKeyLine(raw, ''));
  } catch (err) {
    o.log.error('could not record the server key', { path: o.knownServersPath, error: err as Error });
  }
}
