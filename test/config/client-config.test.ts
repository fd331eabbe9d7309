import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CLIENT_DEFAULTS,
  parseClientConfig,
  parseTunnel,
  splitHostPort,
  TUNNEL_DEFAULTS,
} from '../../src/config/client-config.js';
import { loadClientConfig } from '../../src/config/client-config-file.js';
import { ConfigError } from '../../src/config/config-error.js';
import { clientConfigJsonSchema } from '../../src/config/json-schema.js';

test('a valid config gets its defaults', () => {
  const cfg = parseClientConfig({
    server: 'vps.example.com:9000',
    tunnels: [{ name: 'web', remotePort: 8080, localPort: 3000 }],
  });
  assert.equal(cfg.heartbeatSeconds, CLIENT_DEFAULTS.heartbeatSeconds);
  assert.equal(cfg.dataChannelPool, CLIENT_DEFAULTS.dataChannelPool);
  assert.deepEqual(cfg.tunnels[0], { name: 'web', remotePort: 8080, localPort: 3000, ...TUNNEL_DEFAULTS });
});

test('the new tunnel fields are validated from the start', () => {
  const t = parseTunnel({
    name: 'x',
    remotePort: 1,
    localPort: 2,
    compress: false,
    proxyProtocol: 'v1',
    permitFrom: ['192.0.2.0/24', '2001:db8::/32', '198.51.100.7'],
    maxConnections: 5,
    rateLimit: '100Mbit/s',
  });
  assert.equal(t.compress, false);
  assert.equal(parseTunnel({ name: 'x', remotePort: 1, localPort: 2, compress: 'zstd' }).compress, 'zstd');
  assert.equal(parseTunnel({ name: 'x', remotePort: 1, localPort: 2 }).compress, true, 'LZ4 by default');
  assert.deepEqual(t.permitFrom, ['192.0.2.0/24', '2001:db8::/32', '198.51.100.7']);
  const bad: [Record<string, unknown>, string, RegExp][] = [
    [{ proxyProtocol: 'v3' }, 'proxyProtocol', /"v1" or "v2"/],
    [{ permitFrom: [] }, 'permitFrom', /at least one address; leave the field out/],
    [{ permitFrom: Array.from({ length: 33 }, (_, i) => `10.0.0.${i}`) }, 'permitFrom', /at most 32/],
    [{ permitFrom: ['10.0.0.0/33'] }, 'permitFrom', /prefix length must be from 0 to 32/],
    [{ maxConnections: -1 }, 'maxConnections', /at least 1/],
    [{ rateLimit: '0B/s' }, 'rateLimit', /less than 1 byte/],
    [{ rateLimit: '5GiB/s' }, 'rateLimit', /more than the most/],
    [{ compress: 'yes' }, 'compress', /true \(LZ4\), false \(off\) or "zstd"/],
    [{ compress: 'lz4' }, 'compress', /true \(LZ4\), false \(off\) or "zstd"/],
  ];
  for (const [patch, field, re] of bad) {
    assert.throws(
      () => parseTunnel({ name: 'x', remotePort: 1, localPort: 2, ...patch }),
      (e: unknown) => e instanceof ConfigError && e.field === field && re.test(e.message),
      JSON.stringify(patch),
    );
  }
});

test('a ConfigError carries its field and every issue, so nothing guesses from the text', () => {
  try {
    parseTunnel({ name: '', remotePort: 'x', localHost: 'a b', localPort: 70000 });
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.field, 'name');
    assert.deepEqual(
      err.issues.map((i) => i.field),
      ['name', 'remotePort', 'localHost', 'localPort'],
    );
    assert.equal(err.issues[1]!.message, 'public port must be a number from 1 to 65535');
  }
  try {
    parseClientConfig({ server: 'h:1', tunnels: [{ name: 'a', remotePort: 1, localPort: 0 }] });
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.field, 'tunnels[0].localPort');
  }
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
    assert.match(msg, /server: server address must be "host:port"/);
    assert.match(msg, /serverKey: server key must be the server's public key line/);
    assert.match(msg, /heartbeatSeconds: heartbeat interval must be a number of seconds/);
    assert.match(msg, /unknown field "colour"; remove it/);
    assert.match(msg, /tunnels\[0\]\.remotePort: public port must be from 1 to 65535/);
    assert.match(msg, /tunnels\[1\]\.localPort: local port must be a number/);
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
      /tunnels\[1\]\.remotePort: public port 8080 is already used by "web"/.test(e.message),
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
