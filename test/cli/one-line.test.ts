/**
 * Tunnels and settings without hand-written files: `mtt client --server … -R …`, `mtt server
 * --config FILE`, `mtt check`, and `mtt allow --list/--remove`, each as a user runs it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { serverConfigJsonSchema } from '../../src/config/server-config.js';
import { freePort } from '../e2e/harness.js';
import { freshHome, homeEnv, type RunningMtt, runMtt, spawnMtt } from './run-mtt.js';

async function hello(t: TestContext, text: string, host = '127.0.0.1'): Promise<number> {
  const s = createServer((_req, res) => res.end(text));
  s.listen(0, host);
  await once(s, 'listening');
  t.after(() => s.close());
  return (s.address() as AddressInfo).port;
}

/** Waits for a server's ready line (JSON logs) and returns its fields. */
async function serverReady(server: RunningMtt): Promise<unknown> {
  await server.waitFor('"msg":"mtt server ready"');
  return JSON.parse(
    server
      .stderr()
      .split('\n')
      .find((l) => l.includes('mtt server ready'))!,
  );
}

/** A running server in `home` that allows a fresh client key `client_key`; returns its banner line. */
async function serverWithClient(t: TestContext, home: string, extra: string[] = []) {
  const env = homeEnv(home, { MTT_CONFIG_DIR: join(home, 'srv') });
  assert.equal((await runMtt(['keygen', '-f', 'client_key'], { env, cwd: home })).code, 0);
  assert.equal((await runMtt(['allow', 'client_key.pub'], { env, cwd: home })).code, 0);
  const port = await freePort();
  const server = spawnMtt(
    t,
    ['server', '--host', '127.0.0.1', '--port', String(port), '--public-host', '127.0.0.1', ...extra],
    { env, cwd: home },
  );
  const ready = (await serverReady(server)) as {
    serverKey: string;
    fingerprint: string;
  };
  return { server, port, env, ...ready };
}

test('mtt client --server HOST:PORT --server-key SHA256:… -R PUBLIC:HOST:PORT serves tunnels without a file', async (t) => {
  const home = await freshHome(t);
  const { port, fingerprint, env } = await serverWithClient(t, home);
  const a = await hello(t, 'service a\n');
  const b = await hello(t, 'service b\n', '::1');
  const pa = await freePort();
  const pb = await freePort();
  const client = spawnMtt(
    t,
    [
      'client',
      '--server',
      `127.0.0.1:${port}`,
      '--server-key',
      fingerprint,
      '-i',
      'client_key',
      '-R',
      `${pa}:127.0.0.1:${a}`,
      '-R',
      `${pb}:[::1]:${b}`,
    ],
    { env, cwd: home },
  );
  await client.waitFor(new RegExp(`"msg":"tunnel active".*"tcp-${pb}"|"tcp-${pb}".*"msg":"tunnel active"`));
  await client.waitFor(new RegExp(`"tcp-${pa}"`));
  assert.equal(await (await fetch(`http://127.0.0.1:${pa}/`)).text(), 'service a\n');
  assert.equal(await (await fetch(`http://127.0.0.1:${pb}/`)).text(), 'service b\n');
  assert.equal(await client.stop(), 0);
  // Nothing was written next to the key: the one-line client has no config file to save.
  assert.equal(await readFile(join(home, 'client.json'), 'utf8').catch(() => 'absent'), 'absent');
});

test('mtt client --server HOST alone means the default control port 9000', async (t) => {
  const home = await freshHome(t);
  const r = await runMtt(
    [
      'client',
      '--server',
      'localhost',
      '-R',
      '10080:127.0.0.1:3000',
      '--exit-on-failure',
      '--log-format',
      'pretty',
    ],
    { env: homeEnv(home), cwd: home },
  );
  // Port 9000 on localhost: refused here or served by someone else's server; either way the banner says it.
  assert.match(r.stdout, /^mtt client for localhost:9000$/m);
});

test('a wrong -R, --server or --server-key is named, every one at once, before anything starts', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  const err = async (args: string[]) => {
    const r = await runMtt(['client', ...args, '--log-format', 'pretty'], { env, cwd: home });
    assert.equal(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    return r.stderr;
  };
  assert.match(
    await err(['--server', 'vps:9000', '-R', '0.0.0.0:10080:h:80']),
    /-R 0\.0\.0\.0:10080:h:80: mtt has no bind address in -R: the server chooses/,
  );
  assert.match(
    await err(['--server', 'vps:9000', '-R', '10080:::1:80']),
    /an IPv6 address must be in brackets/,
  );
  assert.match(
    await err(['--server', 'vps:9000', '-R', '10080']),
    /-R 10080: it is not PUBLIC_PORT:HOST:PORT/,
  );
  const many = await err([
    '--server',
    'bad host:9000',
    '--server-key',
    'nope',
    '-R',
    '70000:127.0.0.1:80',
    '-R',
    '10081:a..b:80',
  ]);
  assert.match(many, /the command line is not valid:/);
  assert.match(many, /- --server bad host:9000: /);
  assert.match(many, /- --server-key: server key must be/);
  assert.match(many, /- -R 70000:127\.0\.0\.1:80: public port must be from 1 to 65535/);
  assert.match(many, /- -R 10081:a\.\.b:80: local host "a\.\.b" is not a host name/);
  // A public port given twice (checked once each tunnel is valid on its own).
  assert.match(
    await err(['--server', 'vps:9000', '-R', '10082:127.0.0.1:80', '-R', '10082:127.0.0.1:81']),
    /^mtt: -R 10082:127\.0\.0\.1:81: public port 10082 is already used by "tcp-10082"$/m,
  );
  assert.match(await err(['--server', 'vps:9000']), /--server needs at least one -R/);
  assert.match(await err(['--config', 'c.json', '-R', '1:h:2']), /either --config FILE or --server\/-R/);
  assert.match(await err([]), /--config FILE or --server HOST:PORT -R/);
});

test('mtt server --config FILE: every flag is a field; flags win; paths are relative to the file', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  const port = await freePort();
  const metrics = await freePort();
  await writeFile(
    join(home, 'server.json'),
    JSON.stringify({
      $schema: './schema/server-config.schema.json',
      port: 1,
      host: '127.0.0.1',
      hostKey: 'keys/host_key',
      allowedKeys: 'keys/allowed_keys',
      allowPorts: '20000-20010',
      publicHost: '127.0.0.1',
      metrics: `127.0.0.1:${metrics}`,
      heartbeatSeconds: 10,
      logLevel: 'warn',
      logFormat: 'json',
    }),
  );
  // Run from another folder: keys/ must land beside server.json; --port overrides the file's 1.
  const server = spawnMtt(t, ['server', '--config', join(home, 'server.json'), '--port', String(port)], {
    env,
    cwd: '/',
  });
  const ready = (await serverReady(server)) as Record<string, string>;
  assert.equal(ready.control, `127.0.0.1:${port}`);
  assert.equal(ready.allowList, join(home, 'keys/allowed_keys'));
  assert.equal(ready.metrics, `http://127.0.0.1:${metrics}/metrics`);
  assert.match(await readFile(join(home, 'keys/host_key'), 'utf8'), /BEGIN OPENSSH PRIVATE KEY/);
  // logLevel from the file: info lines are dropped; only the banner (always shown) is below warn.
  const infos = server
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: string; msg: string })
    .filter((l) => l.level === 'info' || l.level === 'debug');
  assert.deepEqual(
    infos.map((l) => l.msg),
    ['mtt server ready'],
  );
  const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
  assert.match(text, /mtt_client_connected/);
  assert.equal(await server.stop(), 0);
});

test('a bad server config names every wrong field, by flag when it came from one', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  await writeFile(
    join(home, 'server.json'),
    JSON.stringify({ port: '9000', allowPorts: '10-5', metrics: 'nowhere', prot: 1, logLevel: 'loud' }),
  );
  const r = await runMtt(
    ['server', '--config', 'server.json', '--host', '1.2.3.400', '--log-format', 'pretty'],
    {
      env,
      cwd: home,
    },
  );
  assert.equal(r.code, 2);
  const said = r.stderr.trim().split('\n');
  assert.match(said[0]!, /^mtt: .*server\.json is not valid:$/);
  const problems = said.slice(1).join('\n');
  assert.match(problems, /- port must be a port number from 0 to 65535, not "9000"/);
  assert.match(problems, /- --host must be an address to listen on: .*"1\.2\.3\.400" is not an IPv4 address/);
  assert.match(problems, /- allowPorts is not a port list: range "10-5" starts above its end/);
  assert.match(problems, /- metrics must be ADDR:PORT, e.g. 127\.0\.0\.1:9100, not "nowhere"/);
  assert.match(problems, /- logLevel must be debug, info, warn or error, not "loud"/);
  assert.match(problems, /- unknown field "prot"; remove it \(see schema\/server-config\.schema\.json\)/);
  // Flags alone go through the same schema: one wrong flag is one line.
  const one = await runMtt(['server', '--heartbeat', 'soon', '--log-format', 'pretty'], { env, cwd: home });
  assert.equal(one.stderr, 'mtt: --heartbeat must be a positive number of seconds, not "soon"\n');
});

test('schema/server-config.schema.json is generated from the zod schema and current', async () => {
  const committed = await readFile(
    new URL('../../../schema/server-config.schema.json', import.meta.url),
    'utf8',
  );
  assert.equal(committed, serverConfigJsonSchema(), 'run: node dist/src/config/server-config.js --write');
  const schema = JSON.parse(committed) as {
    properties: Record<string, unknown>;
    additionalProperties: boolean;
  };
  for (const field of [
    'port',
    'host',
    'hostKey',
    'allowedKeys',
    'allowPorts',
    'publicHost',
    'metrics',
    'heartbeatSeconds',
    'logLevel',
    'logFormat',
  ]) {
    assert.ok(field in schema.properties, field);
  }
  assert.equal(schema.additionalProperties, false);
});

test('mtt check validates a client or a server config and the files it names, starting nothing', async (t) => {
  const home = await freshHome(t);
  const env = homeEnv(home);
  await writeFile(
    join(home, 'client.json'),
    JSON.stringify({
      server: 'vps.example.com:9000',
      tunnels: [{ name: 'web', remotePort: 10080, localPort: 3000 }],
    }),
  );
  const c = await runMtt(['check', '--config', 'client.json'], { env, cwd: home });
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /client\.json: a valid client config for vps\.example\.com:9000, 1 tunnel\n/);
  assert.match(c.stdout, / {2}web: server port 10080 -> 127\.0\.0\.1:3000\n/);
  assert.match(c.stdout, /identity: .* does not exist yet; mtt client creates it on first run/);
  await writeFile(join(home, 'server.json'), JSON.stringify({ port: 9000, allowPorts: '10000-10100' }));
  const s = await runMtt(['check', '--config', 'server.json'], { env, cwd: home });
  assert.equal(s.code, 0, s.stderr);
  assert.match(
    s.stdout,
    /server\.json: a valid server config: control 0\.0\.0\.0:9000, public ports 10000-10100/,
  );
  assert.match(s.stdout, /host key: .* does not exist yet/);
  // Nothing was created: check writes no file.
  assert.equal(await readFile(join(home, '.config/mtt/host_key'), 'utf8').catch(() => 'absent'), 'absent');

  // Broken: every field named, exit 2; a broken allow-list it names is found too.
  await writeFile(
    join(home, 'bad.json'),
    JSON.stringify({ server: 'x', tunnels: [{ name: 'a b', remotePort: 0, localPort: 1 }] }),
  );
  const bad = await runMtt(['check', '--config', 'bad.json', '--log-format', 'pretty'], { env, cwd: home });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /tunnels\[0\]\.name/);
  assert.match(bad.stderr, /tunnels\[0\]\.remotePort/);
  await writeFile(join(home, 'allowed'), 'ssh-ed25519 AAAAnotakey x\n', { mode: 0o600 });
  await writeFile(join(home, 'srv2.json'), JSON.stringify({ allowedKeys: 'allowed' }));
  const list = await runMtt(['check', '--config', 'srv2.json', '--log-format', 'pretty'], { env, cwd: home });
  assert.equal(list.code, 2);
  assert.match(list.stderr, /allowed:1: the key data/);
  await writeFile(join(home, 'what.json'), '{}');
  const unknown = await runMtt(['check', '--config', 'what.json', '--log-format', 'pretty'], {
    env,
    cwd: home,
  });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /cannot tell whether .* pass --kind client or --kind server/);
  const forced = await runMtt(['check', '--config', 'what.json', '--kind', 'server'], { env, cwd: home });
  assert.equal(forced.code, 0, forced.stderr);
  // A missing file: the one read error every config command gives, with check's own fix.
  const missing = await runMtt(['check', '--config', 'none.json', '--log-format', 'pretty'], {
    env,
    cwd: home,
  });
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /config file .*none\.json does not exist; pass the path of a client or a server config \(mtt check --help\)/,
  );
});

test('mtt allow --list and --remove: atomic, keeping comments and other lines; a running server applies it', async (t) => {
  const home = await freshHome(t);
  const { server, port, env } = await serverWithClient(t, home);
  const list = join(home, 'srv', 'allowed_keys');
  // Hand-written parts of the file that must survive: comments, blank lines, another key with options.
  assert.equal((await runMtt(['keygen', '-f', 'other', '-C', 'bob@nas'], { env, cwd: home })).code, 0);
  const other = (await readFile(join(home, 'other.pub'), 'utf8')).trim();
  const before = `# Alice's home server\n${(await readFile(list, 'utf8')).trim()}\n\n# Bob\npermitlisten="10080" ${other}\n`;
  await writeFile(list, before, { mode: 0o600 });

  const l = await runMtt(['allow', '--list'], { env, cwd: home });
  assert.equal(l.code, 0, l.stderr);
  const rows = l.stdout.trim().split('\n');
  assert.match(rows[0]!, /^2 keys in .*allowed_keys$/);
  assert.match(rows[1]!, /^SHA256:\S{43} {2}\S+ {2}ports=\* {2}line 2$/);
  assert.match(rows[2]!, /^SHA256:\S{43} {2}bob@nas {2}ports=10080 {2}line 5$/);

  // A client of the first key, connected; removing the key ends its session.
  const svc = await hello(t, 'x');
  const client = spawnMtt(
    t,
    [
      'client',
      '--server',
      `127.0.0.1:${port}`,
      '-i',
      'client_key',
      '-R',
      `${await freePort()}:127.0.0.1:${svc}`,
    ],
    { env, cwd: home },
  );
  await client.waitFor('"msg":"tunnel active"');
  const r = await runMtt(['allow', '--remove', 'client_key.pub'], { env, cwd: home });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^Removed SHA256:\S+ \(\S+\) from .*allowed_keys, line 2; 1 key left$/);
  const after = await readFile(list, 'utf8');
  assert.equal(after, before.replace(/^ssh-ed25519 .*\n/m, ''));
  await server.waitFor(/allow-list loaded.*"keys":1/);
  await client.waitFor(/unknown_key|rejected|revoked/);

  // By fingerprint; then one that is not there.
  const bob = /SHA256:\S{43}(?= {2}bob@nas)/.exec(rows[2]!)![0];
  const byFp = await runMtt(['allow', '--remove', bob], { env, cwd: home });
  assert.equal(byFp.code, 0, byFp.stderr);
  assert.equal(await readFile(list, 'utf8'), "# Alice's home server\n\n# Bob\n");
  const missing = await runMtt(['allow', '--remove', bob, '--log-format', 'pretty'], { env, cwd: home });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /is not in .*allowed_keys; mtt allow --list shows the keys/);
  assert.equal(await server.stop(), 0);
});
