/**
 * The server's judgement of a client that may be gone (src/server/client-liveness.ts), with the real
 * `mtt` server and client in child processes on loopback. A client whose event loop stalls for a
 * moment (SIGSTOP for 1.2 s, as a loaded machine or a GC pause would hold it) is alive: the visitors
 * that come meanwhile are served, none refused. A client stopped for good still gets its visitors
 * refused, long before they would time out waiting for a channel.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { CHANNEL_WAIT_TIMEOUT_MS } from '../../src/protocol/limits.js';
import { MTT } from '../cli/run-mtt.js';
import { loopbackServerArgs, spawnMttLogged } from '../lib/mtt-process.js';
import { echoServer, freePort } from './harness.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server and a client with one tunnel to an echo service; resolves once the tunnel is active. */
async function tunnel(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-liveness-'));
  // Nothing of the person running the tests is read or written: the config folder is the temp one.
  const env = { MTT_CONFIG_DIR: dir };
  for (const k of ['client_key', 'host_key'])
    await run(process.execPath, [MTT, 'keygen', '-f', join(dir, k)], { env: { ...process.env, ...env } });
  await writeFile(join(dir, 'allowed_keys'), await readFile(join(dir, 'client_key.pub')));
  const echo = await echoServer(t);
  const port = await freePort();
  const publicPort = await freePort();
  const server = spawnMttLogged(
    t,
    loopbackServerArgs(
      port,
      '--host-key',
      join(dir, 'host_key'),
      '--allowed-keys',
      join(dir, 'allowed_keys'),
      '--admin-socket',
      'off',
    ),
    env,
  );
  const config = {
    server: `127.0.0.1:${port}`,
    serverKey: (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim(),
    identity: join(dir, 'client_key'),
    tunnels: [{ name: 'echo', remotePort: publicPort, localHost: '127.0.0.1', localPort: echo.port }],
  };
  await writeFile(join(dir, 'client.json'), JSON.stringify(config));
  const client = spawnMttLogged(t, ['client', '--config', join(dir, 'client.json')], env);
  await client.waitLog((l) => l.msg === 'tunnel active', 15_000);
  return { server, client, publicPort };
}

type Outcome = { outcome: 'served' | 'reset' | 'ended'; ms: number };

/** A visitor that sends a line: served when it is echoed, else how its connection ended. */
function visit(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = connect({ host: '127.0.0.1', port });
    let got = 0;
    let reset = false;
    s.on('connect', () => s.write('hello\n'));
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= 6) s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      reset = e.code === 'ECONNRESET';
    });
    s.on('close', () =>
      resolve({ outcome: got >= 6 ? 'served' : reset ? 'reset' : 'ended', ms: Date.now() - started }),
    );
    // Bounds the test, far beyond any wait the server may impose (CHANNEL_WAIT_TIMEOUT_MS).
    s.setTimeout(3 * CHANNEL_WAIT_TIMEOUT_MS, () => s.destroy());
  });
}

test('a client stalled 1.2 s at a time (SIGSTOP, then SIGCONT): every visitor meanwhile is served, none refused', {
  timeout: 90_000,
}, async (t) => {
  const { server, client, publicPort } = await tunnel(t);
  const outcomes: Outcome[] = [];
  for (let round = 0; round < 3; round++) {
    // Past LIVENESS_FRESH_MS of silence, so that the visitors make the server probe the client.
    await sleep(1000);
    client.child.kill('SIGSTOP');
    await sleep(50);
    const visits = Array.from({ length: 5 }, () => visit(publicPort));
    await sleep(1150);
    client.child.kill('SIGCONT');
    outcomes.push(...(await Promise.all(visits)));
  }
  const notServed = outcomes.filter((o) => o.outcome !== 'served');
  assert.deepEqual(notServed, [], `${notServed.length} of ${outcomes.length} visitors not served`);
  const refusals = server.logs.filter((l) => /did not answer a probe|visitor refused/.test(String(l.msg)));
  assert.deepEqual(refusals, [], 'the server refused nobody');
  t.diagnostic(`${outcomes.length} visitors served; slowest ${Math.max(...outcomes.map((o) => o.ms))} ms`);
});

test('a client stopped for good: its visitors are refused as not answering, well before the channel wait ends', {
  timeout: 60_000,
}, async (t) => {
  const { server, client, publicPort } = await tunnel(t);
  await sleep(1000);
  client.child.kill('SIGSTOP');
  await sleep(50);
  const first = await Promise.all(Array.from({ length: 3 }, () => visit(publicPort)));
  for (const o of first) {
    assert.equal(o.outcome, 'reset', `a visitor of a stopped client: ${o.outcome} after ${o.ms} ms`);
    assert.ok(o.ms < CHANNEL_WAIT_TIMEOUT_MS, `reset after ${o.ms} ms, not held for a channel`);
  }
  assert.ok(
    server.logs.some((l) => l.msg === 'the client did not answer a probe; refusing visitors until it does'),
    'the server names the reason',
  );
  // While the client is suspect, a new visitor is refused at once (well below the probe deadline).
  const next = await visit(publicPort);
  assert.equal(next.outcome, 'reset');
  assert.ok(next.ms < first[0]!.ms, `refused after ${next.ms} ms while suspect`);
  client.child.kill('SIGCONT');
  t.diagnostic(
    `first visitors reset after ${first.map((o) => o.ms).join(', ')} ms; next after ${next.ms} ms`,
  );
});
