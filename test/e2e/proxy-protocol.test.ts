/**
 * PROXY protocol with a real consumer: Debian's nginx with `listen … proxy_protocol` behind two
 * tunnels (one v1, one v2), visited from 127.0.0.1, 127.0.0.2 and ::1. nginx must see each
 * visitor's own address and port ($proxy_protocol_addr, $proxy_protocol_port), in its answer and in
 * its access log; and a tunnel without proxyProtocol must send the service no header at all.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { privateNginxConfig } from '../lib/nginx-config.js';
import { findProgram } from '../lib/programs.js';
import { freePort, listen, startPair, tunnelsActive } from './harness.js';

/** A private nginx answering "$proxy_protocol_addr $proxy_protocol_port" on a proxy_protocol port. */
async function startNginx(t: TestContext): Promise<{ port: number; log: string }> {
  const nginx = findProgram('nginx');
  if (!nginx) throw new Error('nginx not found: apt-get install -y --no-install-recommends nginx');
  const dir = await mkdtemp(join(tmpdir(), `mtt-pp-nginx-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const log = join(dir, 'access.log');
  await writeFile(
    join(dir, 'nginx.conf'),
    privateNginxConfig(dir, {
      top: ['master_process off;'],
      workerConnections: 64,
      http: [
        "log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr';",
        `access_log ${log} pp;`,
      ],
      listen: `127.0.0.1:${port} proxy_protocol`,
      answer: '$proxy_protocol_addr $proxy_protocol_port',
    }),
  );
  const proc: ChildProcess = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  t.after(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await once(proc, 'close');
    }
  });
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (proc.exitCode !== null || i > 100) throw new Error(`nginx did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, log };
}

/** GET / from `localAddress` to host:port, on a connection of its own; resolves with the body. */
function getFrom(
  host: string,
  port: number,
  localAddress: string,
): Promise<{ body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host, port, path: '/', agent: false, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ body, localPort }));
    });
    let localPort = 0;
    req.on('socket', (s) => s.on('connect', () => (localPort = s.localPort ?? 0)));
    req.on('error', reject);
  });
}

test('nginx behind v1 and v2 tunnels sees each visitor: 127.0.0.1, 127.0.0.2 and ::1', async (t) => {
  const { port: nginxPort, log } = await startNginx(t);
  const [v1, v2] = [await freePort(), await freePort()];
  const { client } = await startPair(t, {
    // Dual stack: IPv4 visitors arrive as ::ffff:127.0.0.x and travel as IPv4.
    server: { publicHost: '::' },
    tunnels: [
      { name: 'pp1', remotePort: v1, localPort: nginxPort, proxyProtocol: 'v1' },
      { name: 'pp2', remotePort: v2, localPort: nginxPort, proxyProtocol: 'v2' },
    ],
  });
  await tunnelsActive(client);
  const expected: string[] = [];
  for (const port of [v1, v2]) {
    for (const [host, from] of [
      ['127.0.0.1', '127.0.0.1'],
      ['127.0.0.1', '127.0.0.2'],
      ['::1', '::1'],
    ] as const) {
      const r = await getFrom(host, port, from);
      assert.equal(r.body, `${from} ${r.localPort}\n`, `tunnel ${port === v1 ? 'v1' : 'v2'} from ${from}`);
      // nginx's own connection comes from the client, on loopback.
      expected.push(`${from} ${r.localPort} 127.0.0.1`);
    }
  }
  let lines: string[] = [];
  for (let i = 0; i < 50 && lines.length < expected.length; i++) {
    lines = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
    if (lines.length < expected.length) await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(lines, expected);
});

test('without proxyProtocol the service gets the visitor bytes only', async (t) => {
  const got: Buffer[] = [];
  const service = await listen(t, (s) => {
    s.on('data', (c: Buffer) => {
      got.push(c);
      s.end();
    });
  });
  const port = await freePort();
  const { client } = await startPair(t, {
    tunnels: [{ name: 'plain', remotePort: port, localPort: service.port }],
  });
  await tunnelsActive(client);
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  await once(s, 'connect');
  s.write('hello');
  await once(s, 'close');
  assert.equal(Buffer.concat(got).toString(), 'hello');
});
