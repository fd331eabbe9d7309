/**
 * End-to-end tests with the real `mtt` command in child processes: what only a separate process
 * shows (kill -9, a restart, SIGSTOP, per-process memory).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { MTT } from '../cli/run-mtt.js';
import { loopbackServerArgs, spawnMttLogged } from '../lib/mtt-process.js';
import { dial, echoServer, freePort, listen, readAll } from './harness.js';

const run = promisify(execFile);

/** Keys, allow-list and a client config in a temp folder; the server on a fixed port. */
async function setup(t: TestContext, tunnels: object[], extra: object = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-proc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { MTT_CONFIG_DIR: dir };
  await run(process.execPath, [MTT, 'keygen', '-f', join(dir, 'client_key'), '-C', 'test-client'], {
    env: { ...process.env, ...env },
  });
  await run(process.execPath, [MTT, 'keygen', '-f', join(dir, 'host_key'), '-C', 'test-server'], {
    env: { ...process.env, ...env },
  });
  await run(
    process.execPath,
    [MTT, 'allow', join(dir, 'client_key.pub'), '--allowed-keys', join(dir, 'allowed_keys')],
    {
      env: { ...process.env, ...env },
    },
  );
  const port = await freePort();
  const serverArgs = loopbackServerArgs(
    port,
    '--host-key',
    join(dir, 'host_key'),
    '--allowed-keys',
    join(dir, 'allowed_keys'),
  );
  const config = {
    server: `127.0.0.1:${port}`,
    serverKey: (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim(),
    identity: 'client_key',
    reconnectMaxSeconds: 0.5,
    tunnels,
    ...extra,
  };
  const configPath = join(dir, 'client.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const startServer = () => spawnMttLogged(t, serverArgs, env, { logLevel: 'debug' });
  const startClient = () => spawnMttLogged(t, ['client', '--config', configPath], env, { logLevel: 'debug' });
  return { dir, env, port, configPath, startServer, startClient };
}

const tunnelActive = (name: string) => (l: Record<string, unknown>) =>
  l.msg === 'tunnel active' && l.tunnel === name;

function closedWithin(s: Socket, ms: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`external connection still open after ${ms} ms`)), ms);
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    s.resume();
  });
}

async function echoes(port: number, text: string): Promise<void> {
  const s = await dial(port, { allowHalfOpen: true });
  const got = readAll(s);
  s.end(text);
  assert.equal((await got).toString(), text);
}

test('kill -9 of the client mid-transfer: the external connection closes; a restarted client restores the tunnels', async (t) => {
  const echo = await echoServer(t);
  const block = randomBytes(64 * 1024);
  const source = await listen(t, (s) => {
    const pump = () => {
      while (s.write(block)) {
        /* fill */
      }
      s.once('drain', () => setTimeout(pump, 5));
    };
    pump();
  });
  const [streamPort, echoPort] = [await freePort(), await freePort()];
  const env = await setup(t, [
    { name: 'stream', remotePort: streamPort, localPort: source.port },
    { name: 'echo', remotePort: echoPort, localPort: echo.port },
  ]);
  const server = env.startServer();
  await server.waitLog((l) => l.msg === 'server listening');
  let client = env.startClient();
  await client.waitLog(tunnelActive('stream'));
  await client.waitLog(tunnelActive('echo'));
  const s = await dial(streamPort);
  let got = 0;
  await new Promise<void>((resolve) => {
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got > 1024 * 1024) resolve();
    });
  });
  client.child.kill('SIGKILL');
  const took = await closedWithin(s, 5000);
  assert.ok(took < 5000);
  client = env.startClient();
  await client.waitLog(tunnelActive('stream'));
  await client.waitLog(tunnelActive('echo'));
  await echoes(echoPort, 'back again');
});

test('restarting the server: the client comes back by itself and restores the tunnels', async (t) => {
  const echo = await echoServer(t);
  const echoPort = await freePort();
  const env = await setup(t, [{ name: 'echo', remotePort: echoPort, localPort: echo.port }]);
  let server = env.startServer();
  await server.waitLog((l) => l.msg === 'server listening');
  const client = env.startClient();
  await client.waitLog(tunnelActive('echo'));
  await echoes(echoPort, 'first');
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, 'the server exits cleanly on SIGTERM');
  await client.waitLog((l) => l.msg === 'disconnected');
  const before = client.logs.filter(tunnelActive('echo')).length;
  server = env.startServer();
  await server.waitLog((l) => l.msg === 'server listening');
  await client.waitLog(() => client.logs.filter(tunnelActive('echo')).length > before, 10_000);
  await echoes(echoPort, 'second');
  client.child.kill('SIGINT');
  assert.equal(await client.exited, 0, 'the client exits cleanly on SIGINT');
});

test('a frozen server (SIGSTOP) is detected within the heartbeat timeout', async (t) => {
  const env = await setup(t, [], { heartbeatSeconds: 0.2, heartbeatTimeoutSeconds: 0.5 });
  const server = env.startServer();
  await server.waitLog((l) => l.msg === 'server listening');
  const client = env.startClient();
  await client.waitLog((l) => l.msg === 'connected');
  server.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  const line = await client.waitLog((l) => l.msg === 'disconnected', 5000);
  const took = Date.now() - stoppedAt;
  server.child.kill('SIGCONT');
  assert.match(String(line.reason), /no answer to a heartbeat/);
  // A bound that rules out "by something else, much later" (the 5 s wait), with slack for a loaded machine.
  assert.ok(took < 200 + 500 + 2000, `detected after ${took} ms (interval 200 + timeout 500)`);
});

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN');
  return kb / 1024;
}

test('a slow reader: 200 MB pushed, the bytes in flight stay bounded (backpressure), all arrive', async (t) => {
  const total = 200 * 1024 * 1024;
  const block = randomBytes(256 * 1024);
  let written = 0;
  let sourceDone!: () => void;
  const allWritten = new Promise<void>((r) => {
    sourceDone = r;
  });
  const source = await listen(t, (s) => {
    const pump = () => {
      while (written < total) {
        written += block.length;
        if (!s.write(block)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
      sourceDone();
    };
    pump();
  });
  const port = await freePort();
  const env = await setup(t, [{ name: 'bulk', remotePort: port, localPort: source.port }]);
  const server = env.startServer();
  await server.waitLog((l) => l.msg === 'server listening');
  const client = env.startClient();
  await client.waitLog(tunnelActive('bulk'));
  const reader = await dial(port);
  reader.pause();
  let read = 0;
  let maxInFlight = 0;
  let maxRss = { server: 0, client: 0 };
  // Slow phase: 2 s at about 8 MiB/s, while the source tries to push all 200 MB.
  const slowUntil = Date.now() + 2000;
  while (Date.now() < slowUntil) {
    let took = 0;
    while (took < 64 * 1024) {
      const c = reader.read() as Buffer | null;
      if (c === null) break;
      took += c.length;
    }
    read += took;
    maxInFlight = Math.max(maxInFlight, written - read);
    maxRss = {
      server: Math.max(maxRss.server, await rssMiB(server.child.pid!)),
      client: Math.max(maxRss.client, await rssMiB(client.child.pid!)),
    };
    await new Promise((r) => setTimeout(r, 8));
  }
  assert.ok(written < total / 2, `the source was held back (wrote ${written >> 20} MiB in the slow phase)`);
  // Fast phase: drain the rest; everything arrives.
  reader.on('data', (c: Buffer) => {
    read += c.length;
  });
  reader.resume();
  await once(reader, 'end');
  await allWritten;
  assert.equal(read, total);
  t.diagnostic(
    `in flight at most ${(maxInFlight / 2 ** 20).toFixed(1)} MiB; RSS server ${maxRss.server.toFixed(0)} MiB, client ${maxRss.client.toFixed(0)} MiB`,
  );
  // The bound is on bytes in flight (backpressure held), not on RSS, which depends on the machine.
  assert.ok(maxInFlight < 48 * 2 ** 20, `in-flight bytes bounded: ${maxInFlight}`);
});
