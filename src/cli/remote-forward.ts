/**
 * `mtt client --server HOST[:PORT] -R PUBLIC_PORT:HOST:PORT …`: a client config built from the
 * command line, in ssh's -R order (public port first, then the local target; IPv6 in brackets).
 * The result goes through the same schema as a config file, so every wrong part is named.
 */
import { type ClientConfig, parseClientConfig } from '../config/client-config.js';
import { ConfigError, type FieldIssue } from '../config/config-error.js';

/** The server's control port when `--server` gives only a host. */
export const DEFAULT_SERVER_PORT = 9000;

/** One -R value taken apart (ports still text, so the schema can name a bad one). */
export interface RemoteForward {
  remotePort: number | string;
  localHost: string;
  localPort: number | string;
}

const FORM = 'write -R PUBLIC_PORT:HOST:PORT, e.g. -R 10080:127.0.0.1:3000 or -R 10080:[::1]:3000';

/** Parses one -R value; throws a ConfigError naming it when it is not PUBLIC_PORT:HOST:PORT. */
export function parseRemoteForward(spec: string): RemoteForward {
  const m = /^([^:[\]]*):(\[[^\]]*\]|[^:[\]]*):([^:[\]]*)$/.exec(spec);
  if (m === null) {
    const parts = spec.split(':').length;
    const why =
      parts === 4 && !spec.includes('[')
        ? 'mtt has no bind address in -R: the server chooses where public ports listen (its --public-host)'
        : parts > 4 && !spec.includes('[')
          ? 'an IPv6 address must be in brackets'
          : 'it is not PUBLIC_PORT:HOST:PORT';
    throw new ConfigError(`-R ${spec}: ${why}; ${FORM}`, '-R');
  }
  const num = (s: string) => (/^\d{1,5}$/.test(s) ? Number(s) : s);
  const host = m[2]!;
  return { remotePort: num(m[1]!), localHost: host, localPort: num(m[3]!) };
}

/** `HOST` or `HOST:PORT` (IPv6 in brackets) as "host:port", with the default port when none is given. */
export function serverAddress(server: string): string {
  const bracketed = /^\[[^\]]*\]$/.test(server);
  return bracketed || !server.includes(':') ? `${server}:${DEFAULT_SERVER_PORT}` : server;
}

/** The command line's client settings. */
export interface OneLineOptions {
  server: string;
  serverKey?: string | undefined;
  identity?: string | undefined;
  forwards: string[];
  /** --metrics ADDR:PORT */
  metrics?: string | undefined;
}

/** A validated client config from the command line; a ConfigError names each wrong flag or -R value. */
export function oneLineConfig(opts: OneLineOptions): ClientConfig {
  const forwards = opts.forwards.map((spec) => ({ spec, ...parseRemoteForward(spec) }));
  const input = {
    server: serverAddress(opts.server),
    ...(opts.serverKey !== undefined ? { serverKey: opts.serverKey } : {}),
    ...(opts.identity !== undefined ? { identity: opts.identity } : {}),
    ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    tunnels: forwards.map((f) => ({
      name: `tcp-${f.remotePort}`,
      remotePort: f.remotePort,
      localHost: f.localHost,
      localPort: f.localPort,
    })),
  };
  try {
    return parseClientConfig(input, 'the command line');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // A repeated public port also repeats the generated name; the port's own message says it.
    const named = err.issues.filter((i) => !/^tunnels\[\d+\]\.name$/.test(i.field));
    const issues: FieldIssue[] = named.map((i) => {
      const t = /^tunnels\[(\d+)\]/.exec(i.field);
      const flag = t
        ? `-R ${forwards[Number(t[1])]?.spec ?? ''}`
        : i.field === 'server'
          ? `--server ${opts.server}`
          : i.field === 'serverKey'
            ? '--server-key'
            : i.field === 'identity'
              ? '--identity'
              : i.field === 'metrics'
                ? '--metrics'
                : i.field;
      return { field: flag, message: `${flag}: ${i.message}` };
    });
    const unique = [...new Map(issues.map((i) => [i.message, i])).values()];
    throw new ConfigError(
      unique.length === 1
        ? unique[0]!.message
        : `the command line is not valid:\n${unique.map((i) => `  - ${i.message}`).join('\n')}`,
      unique[0]!.field,
      unique,
    );
  }
}
