/** Every in-process target, by name. The live server campaign is separate (fuzz/live/). */
import { zstdAvailable } from '../../src/protocol/compression.js';
import type { Target } from '../lib/target.js';
import { allowList } from './allow-list.js';
import { clientConfig } from './config.js';
import { configValues } from './config-values.js';
import { framesCleartext, framesKeyed } from './frames.js';
import { handshakeStreams } from './handshake-streams.js';
import { handshakeControl, handshakeData } from './handshakes.js';
import { keyFiles } from './key-files.js';
import { lz4 } from './lz4.js';
import { messagesClient, messagesServer } from './messages.js';
import { serverConfig } from './server-config.js';
import { zstd } from './zstd.js';

/** In a full run, in this order. */
export const TARGETS: readonly Target<never>[] = [
  messagesClient,
  messagesServer,
  framesCleartext,
  framesKeyed,
  lz4,
  // Codec 2 needs node:zlib's zstd (Node 22.15); on an older Node there is nothing to fuzz.
  ...(zstdAvailable() ? [zstd] : []),
  handshakeControl,
  handshakeData,
  handshakeStreams,
  allowList,
  keyFiles,
  clientConfig,
  configValues,
  serverConfig,
] as unknown as Target<never>[];

/** The target of that name; throws listing the names otherwise. */
export function targetByName(name: string): Target<unknown> {
  const t = TARGETS.find((x) => x.name === name);
  if (!t)
    throw new Error(
      `unknown target "${name}"; targets: ${TARGETS.map((x) => x.name).join(', ')}, live-server`,
    );
  return t as unknown as Target<unknown>;
}
