/**
 * `mtt demo` (and `npm start`): a server, a client, a small sample service and one tunnel, all on
 * loopback, with throwaway keys kept in memory. Shows the whole path working with no config at all.
 */
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { startClient } from '../client/index.js';
import { fingerprint, formatPublicKeyLine, generateIdentity, parseAllowList } from '../identity/index.js';
import { startServer } from '../server/index.js';
import { makeLogging } from './logging.js';
import { checkLz4 } from './lz4-check.js';
import { parseCommand } from './parse-command.js';

const DEMO_HELP = `Usage: mtt demo [--public-port PORT]

Runs an mtt server, an mtt client, a small HTTP service and one tunnel on 127.0.0.1, then prints how
to reach the service through the tunnel. Ctrl-C stops everything.

  --public-port PORT   the tunnel's public port (default 8080, or a free one if 8080 is taken)
`;

async function freePort(preferred: number): Promise<number> {
  for (const port of [preferred, 0]) {
    const probe = createServer();
    try {
      probe.listen({ host: '127.0.0.1', port });
      await once(probe, 'listening');
      const got = (probe.address() as AddressInfo).port;
      probe.close();
      return got;
    } catch {
      probe.close();
    }
  }
  throw new Error('no free port on 127.0.0.1');
}

/** mtt demo */
export async function runDemo(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, {
    'public-port': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  // A quiet demo: only warnings, unless --log-level asks for more.
  const logging = makeLogging(values, 'warn');
  const { log } = logging;
  checkLz4(log);
  let hits = 0;
  const service = createHttpServer((req, res) => {
    hits += 1;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`Hello from the LAN service behind mtt! (request ${hits}, ${req.method} ${req.url})\n`);
  });
  service.listen({ host: '127.0.0.1', port: 0 });
  await once(service, 'listening');
  const servicePort = (service.address() as AddressInfo).port;

  const serverKey = generateIdentity('demo-server');
  const clientKey = generateIdentity('demo-client');
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    identity: serverKey,
    allowList: parseAllowList(formatPublicKeyLine(clientKey.publicRaw, 'demo-client'), 'demo allow-list'),
    publicHost: '127.0.0.1',
    allowPorts: [{ low: 1, high: 65535 }],
    log: log.child({ side: 'server' }),
  });
  const publicPort = Number(values['public-port'] ?? 0) || (await freePort(8080));
  const client = startClient({
    host: '127.0.0.1',
    port: server.address.port,
    identity: clientKey,
    serverKey: formatPublicKeyLine(serverKey.publicRaw),
    tunnels: [{ name: 'demo-web', remotePort: publicPort, localHost: '127.0.0.1', localPort: servicePort }],
    log: log.child({ side: 'client' }),
  });
  const stop = async () => {
    await client.close();
    await server.close();
    service.closeAllConnections();
    service.close();
  };
  try {
    const snap = await client.waitFor((s) => s.tunnels.every((t) => t.status !== 'opening'), 10_000);
    const t = snap.tunnels[0]!;
    if (t.status !== 'active') throw new Error(`the demo tunnel did not open: ${t.error ?? t.status}`);
  } catch (err) {
    await stop();
    throw err;
  }
  const url = `http://127.0.0.1:${publicPort}/`;
  logging.banner(
    `mtt demo is running on loopback:\n` +
      `  server   127.0.0.1:${server.address.port}  key ${fingerprint(serverKey.publicRaw)}\n` +
      `  client   key ${fingerprint(clientKey.publicRaw)} (allowed), pinned the server key\n` +
      `  service  http://127.0.0.1:${servicePort}/  (the "LAN" service)\n` +
      `  tunnel   127.0.0.1:${publicPort} -> 127.0.0.1:${servicePort}, encrypted (X25519 + ChaCha20-Poly1305)\n\n` +
      `Try it:  curl ${url}\n` +
      `Stop it: Ctrl-C\n`,
    'mtt demo is running',
    {
      server: `127.0.0.1:${server.address.port}`,
      service: `http://127.0.0.1:${servicePort}/`,
      tunnel: `127.0.0.1:${publicPort} -> 127.0.0.1:${servicePort}`,
      url,
      try: `curl ${url}`,
    },
  );
  if (!signal.aborted) await once(signal, 'abort');
  const said = `stopped; the service answered ${hits} request${hits === 1 ? '' : 's'}`;
  if (logging.format === 'pretty') process.stdout.write('\nstopping the demo…\n');
  await stop();
  logging.banner(`${said}\n`, 'mtt demo stopped', { requests: hits });
  return 0;
}
