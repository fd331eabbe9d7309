/** A loopback port for tests, the fuzzer and the soak: the one `freePort` they all import. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Where ports are picked: below the kernel's ephemeral range (32768-60999 on Linux by default). A
 * port from that range, found free a moment ago, can become the source port of one of the many
 * connections the tests open before the test binds it (EADDRINUSE: a tunnel refused with
 * port_in_use and retried seconds later); below it, only a listener takes a port.
 */
function pickRange(): [number, number] {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    // Not Linux: keep the default.
  }
  const hi = Math.max(2048, Math.min(low, 32768) - 1);
  return [Math.max(1024, hi - 12_000), hi];
}

const RANGE = pickRange();

/**
 * Whether nothing holds `port` on any address: the wildcard (dual-stack where there is IPv6) is what
 * a server's public listener binds by default, and it conflicts with a socket on any address there
 * (127.0.0.2 included), which a bind to 127.0.0.1 alone would not see.
 */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port }, () => s.close(() => resolve(true)));
  });
}

/** A port free on every address a moment ago, picked at random below the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = RANGE[0] + Math.floor(Math.random() * (RANGE[1] - RANGE[0] + 1));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${RANGE[0]}-${RANGE[1]}`);
}
