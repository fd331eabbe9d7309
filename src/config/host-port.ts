/** "host:port" strings (kept apart from the config schema so the server need not load zod). */
import { ConfigError } from './config-error.js';

/** Splits "host:port" (IPv6 in brackets). */
export function splitHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`"${s}" is not "host:port"`, 'server');
  return { host: (m[1] ?? m[2])!, port };
}
