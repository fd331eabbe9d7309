/**
 * One side of the soak (`node --expose-gc child.js server|client JSON`): a real mtt server or client
 * started with the library, reporting its own memory on request. Lines on stdout are JSON:
 * `{"ready":…}` once up, then one `{"mem":…}` per `mem` or `gc` line read on stdin (`gc` forces a full
 * collection first). It exits when stdin closes.
 */
import { readFileSync } from 'node:fs';
import { startClient } from '../../src/client/index.js';
import { loadIdentity, parseAllowList } from '../../src/identity/index.js';
import { startServer } from '../../src/server/index.js';

const [role, json] = process.argv.slice(2);
const cfg = JSON.parse(json ?? '{}') as {
  port: number;
  hostKey: string;
  clientKey: string;
  clientPub: string;
  hostPub: string;
  remotePort: number;
  localPort: number;
};
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  let stop: () => Promise<void>;
  if (role === 'server') {
    const server = await startServer({
      host: '127.0.0.1',
      port: cfg.port,
      identity: await loadIdentity(cfg.hostKey),
      allowList: parseAllowList(readFileSync(cfg.clientPub, 'utf8'), cfg.clientPub),
      publicHost: '127.0.0.1',
      allowPorts: [{ low: 1024, high: 65535 }],
    });
    stop = () => server.close();
    out({ ready: 'server', port: server.address.port });
  } else {
    const client = startClient({
      host: '127.0.0.1',
      port: cfg.port,
      identity: await loadIdentity(cfg.clientKey),
      serverKey: readFileSync(cfg.hostPub, 'utf8').trim(),
      tunnels: [
        { name: 'soak', remotePort: cfg.remotePort, localHost: '127.0.0.1', localPort: cfg.localPort },
      ],
    });
    await client.waitFor((s) => s.tunnels.every((t) => t.status === 'active'), 20_000);
    stop = () => client.close();
    out({ ready: 'client' });
  }
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (cmd === 'gc') (globalThis as { gc?: () => void }).gc?.();
      if (cmd === 'gc' || cmd === 'mem') {
        const m = process.memoryUsage();
        out({
          mem: { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external },
          gc: cmd === 'gc',
        });
      }
    }
  });
  process.stdin.on('end', () => {
    void stop().finally(() => process.exit(0));
  });
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
