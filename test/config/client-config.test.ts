import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadClientConfig, parseClientConfig, splitHostPort } from '../../src/config/client-config.js';
import { ConfigError } from '../../src/config/config-error.js';
import { clientConfigJsonSchema } from '../../src/config/json-schema.js';

test('a valid config gets its defaults', () => {
  const cfg = parseClientConfig({
    server: 'vps.example.com:9000',
    tunnels: [{ name: 'web', remotePort: 8080, localPort: 3000 }],
  });
  assert.equal(cfg.heartbeatSeconds, 30);
  assert.equal(cfg.tunnels[0]!.localHost, '127.0.0.1');
  assert.equal(cfg.tunnels[0]!.enabled, true);
});

test('every wrong field is named, with its fix', () => {
  try {
    parseClientConfig(
      {
        server: 'no-port',
        serverKey: 'ssh-rsa AAAA',
        heartbeatSeconds: 'often',
        colour: 'blue',
        tunnels: [
          { name: 'web', remotePort: 80000, localPort: 3000 },
          { name: 'web', remotePort: 8081, localPort: 'x' },
        ],
      },
      'c.json',
    );
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const msg = err.message;
    assert.match(msg, /^c\.json is not valid:/);
    assert.match(msg, /server: server must be "host:port"/);
    assert.match(msg, /serverKey: serverKey must be the server's public key line/);
    assert.match(msg, /heartbeatSeconds: heartbeatSeconds must be a number/);
    assert.match(msg, /unknown field "colour"; remove it/);
    assert.match(msg, /tunnels\[0\]\.remotePort: remotePort must be from 1 to 65535/);
    assert.match(msg, /tunnels\[1\]\.localPort: localPort must be a number/);
  }
});

test('two tunnels with one name or one remotePort are refused', () => {
  assert.throws(
    () =>
      parseClientConfig({
        server: 'h:1',
        tunnels: [
          { name: 'web', remotePort: 8080, localPort: 1 },
          { name: 'web', remotePort: 8080, localPort: 2 },
        ],
      }),
    (e: Error) =>
      /tunnels\[1\]\.name: name "web" is used twice/.test(e.message) &&
      /tunnels\[1\]\.remotePort: remotePort 8080 is used by two tunnels/.test(e.message),
  );
});

test('relative paths are resolved from the config file folder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-cfg-'));
  const path = join(dir, 'c.json');
  await writeFile(
    path,
    JSON.stringify({ server: '127.0.0.1:9000', identity: 'keys/id', knownServers: '../ks' }),
  );
  const loaded = await loadClientConfig(path);
  assert.equal(loaded.identityPath, join(dir, 'keys/id'));
  assert.equal(loaded.knownServersPath, join(dir, '../ks'));
});

test('a file that is not JSON, or missing, is a ConfigError naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-cfg-'));
  const path = join(dir, 'c.json');
  await writeFile(path, '{ "server": ');
  await assert.rejects(
    loadClientConfig(path),
    (e: Error) => e instanceof ConfigError && /not valid JSON/.test(e.message),
  );
  await assert.rejects(
    loadClientConfig(join(dir, 'none.json')),
    (e: Error) => e instanceof ConfigError && /does not exist/.test(e.message),
  );
});

test('host:port splitting, IPv6 included', () => {
  assert.deepEqual(splitHostPort('[::1]:9000'), { host: '::1', port: 9000 });
  assert.deepEqual(splitHostPort('a.b:1'), { host: 'a.b', port: 1 });
  assert.throws(() => splitHostPort('a.b:70000'), ConfigError);
});

test('schema/client-config.schema.json is generated from the zod schema and current', () => {
  const committed = readFileSync(
    fileURLToPath(new URL('../../../schema/client-config.schema.json', import.meta.url)),
    'utf8',
  );
  assert.equal(committed, clientConfigJsonSchema(), 'run: node dist/src/config/json-schema.js --write');
});
