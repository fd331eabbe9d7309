/**
 * The server's settings and the one-line client: parseServerConfig (a config file's JSON under
 * command-line flags) on settings built from the server config's own JSON Schema and changed, the
 * same as JSON text; and oneLineConfig (`mtt client --server H -R P:HOST:PORT …`) on generated -R
 * specs and servers. Properties: only ConfigErrors; a parsed config parses again to the same thing;
 * the one-line client makes one tunnel per -R and passes the client config schema again.
 */
import { oneLineConfig } from '../../src/cli/remote-forward.js';
import { parseClientConfig } from '../../src/config/client-config.js';
import { parseServerConfig, SERVER_FLAGS, serverConfigJsonSchema } from '../../src/config/server-config.js';
import { expectCoded, OracleError } from '../lib/outcome.js';
import type { Rng } from '../lib/rng.js';
import type { Target } from '../lib/target.js';
import {
  type ConfigInput,
  collectSpecials,
  example,
  type Json,
  mutateJson,
  mutateText,
  restore,
  type Schema,
} from './config.js';

let schema: Schema | undefined;
function serverSchema(): Schema {
  schema ??= JSON.parse(serverConfigJsonSchema()) as Schema;
  return schema;
}

interface ServerInput {
  kind: 'file' | 'text' | 'oneline';
  file: Pick<ConfigInput, 'json' | 'specials'>;
  flags: Pick<ConfigInput, 'json' | 'specials'>;
  server: string;
  forwards: string[];
}

function packed(v: Json): Pick<ConfigInput, 'json' | 'specials'> {
  const specials: ConfigInput['specials'] = [];
  collectSpecials(v, [], specials);
  return { json: JSON.stringify(v), specials };
}

function token(rng: Rng, list: string[]): string {
  return rng.pick(list);
}

function forward(rng: Rng): string {
  const port = () =>
    token(rng, ['80', '8080', '10080', '0', '65535', '65536', '', 'x', '007', String(rng.int(70000))]);
  const host = () =>
    token(rng, [
      '127.0.0.1',
      'localhost',
      '[::1]',
      '::1',
      'db.lan',
      '',
      '[',
      ']',
      '[::1',
      'a b',
      '999.1.1.1',
      '[fe80::1%eth0]',
    ]);
  const r = rng.int(8);
  if (r >= 5) {
    // A valid one: the one-line client must take it.
    return `${10000 + rng.int(50000)}:${rng.pick(['127.0.0.1', 'localhost', '[::1]', 'db.lan'])}:${1 + rng.int(65535)}`;
  }
  if (r === 0) return `${port()}:${port()}`;
  if (r === 1) return `${host()}:${port()}:${host()}:${port()}`;
  let s = `${port()}:${host()}:${port()}`;
  if (rng.chance(0.1)) s = mutateText(s, rng);
  return s;
}

function generate(rng: Rng): ServerInput {
  const kind = rng.weighted([
    [6, 'file'],
    [2, 'text'],
    [3, 'oneline'],
  ] as const);
  let file: Json = example(serverSchema(), rng, 0);
  if (rng.chance(0.8)) file = mutateJson(file, rng);
  // Flags as the command line gives them: a few fields, strings or numbers.
  const flags: { [k: string]: Json } = {};
  for (const f of Object.keys(SERVER_FLAGS)) {
    if (!rng.chance(0.15)) continue;
    const props = serverSchema().properties ?? {};
    flags[f] =
      rng.chance(0.7) && props[f]
        ? example(props[f]!, rng, 1)
        : rng.pick(['', '0', '-1', '9000', 'x', '1e3', '  8080 ']);
  }
  const input: ServerInput = {
    kind,
    file: packed(file),
    flags: packed(rng.chance(0.3) ? mutateJson(flags, rng) : flags),
    server: token(rng, [
      'vps.example.com',
      'vps.example.com:9000',
      '127.0.0.1',
      '[::1]',
      '[::1]:9000',
      '::1',
      '',
      ':9000',
      'host:',
      'a:b:c',
      '[::1]x',
    ]),
    forwards: Array.from({ length: rng.smallLen(5) }, () => forward(rng)),
  };
  if (kind === 'text') input.file = { json: mutateText(input.file.json, rng), specials: [] };
  return input;
}

function execute(input: ServerInput): void {
  if (input.kind === 'oneline') {
    let cfg: ReturnType<typeof oneLineConfig>;
    try {
      cfg = oneLineConfig({ server: input.server, forwards: input.forwards });
    } catch (err) {
      expectCoded(err);
      return;
    }
    if (cfg.tunnels.length !== input.forwards.length) {
      throw new OracleError(`${input.forwards.length} -R specs made ${cfg.tunnels.length} tunnels`);
    }
    let again: unknown;
    try {
      again = parseClientConfig(JSON.parse(JSON.stringify(cfg)), 'again');
    } catch (err) {
      throw new OracleError(`the one-line config fails the client config schema: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (JSON.stringify(again) !== JSON.stringify(cfg))
      throw new OracleError('the one-line config parses to something else again');
    return;
  }
  let file: unknown;
  if (input.kind === 'text') {
    try {
      file = JSON.parse(input.file.json);
    } catch {
      return; // readServerConfigFile names the file for a syntax error; nothing of ours ran
    }
  } else file = restore(input.file);
  const flags = restore(input.flags) as Record<string, unknown>;
  let cfg: ReturnType<typeof parseServerConfig>;
  try {
    cfg = parseServerConfig(file, flags as never, input.kind === 'text' ? '/fuzz/server.json' : undefined);
  } catch (err) {
    expectCoded(err);
    return;
  }
  let again: unknown;
  try {
    again = parseServerConfig(JSON.parse(JSON.stringify(cfg)));
  } catch (err) {
    throw new OracleError(`a parsed server config is refused when parsed again: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (JSON.stringify(again) !== JSON.stringify(cfg))
    throw new OracleError('a parsed server config parses to something else again');
}

/** The server config and the one-line client. */
export const serverConfig: Target<ServerInput> = {
  name: 'server-config',
  about:
    'parseServerConfig (file under flags) on settings built from its JSON Schema and changed, and oneLineConfig on generated -R specs; only ConfigErrors, idempotent parsing, one tunnel per -R',
  weight: 50_000,
  hangMs: 10_000,
  setup: () => void serverSchema(),
  generate,
  execute,
};
