import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  formatPublicKeyLine,
  generateIdentity,
  lookupKnownServer,
  recordKnownServer,
} from '../../src/identity/index.js';
import { tempDir } from './helpers.js';

const server = generateIdentity('server');
const other = generateIdentity('other');
const serverLine = formatPublicKeyLine(server.publicRaw);
const otherLine = formatPublicKeyLine(other.publicRaw);

test('record then lookup, per host:port, in a file created on demand', async () => {
  const dir = await tempDir();
  const path = join(dir, 'config', 'known_servers');
  assert.equal(await lookupKnownServer(path, 'tunnel.example:7000'), undefined);
  assert.equal(await recordKnownServer(path, 'tunnel.example:7000', `${serverLine} server`), 'added');
  assert.equal(await recordKnownServer(path, '[::1]:7000', otherLine), 'added');
  assert.equal(await lookupKnownServer(path, 'tunnel.example:7000'), serverLine);
  assert.equal(await lookupKnownServer(path, '[::1]:7000'), otherLine);
  assert.equal(await lookupKnownServer(path, 'tunnel.example:7001'), undefined);
  assert.equal(await recordKnownServer(path, 'tunnel.example:7000', serverLine), 'exists');
  assert.equal(await readFile(path, 'utf8'), `tunnel.example:7000 ${serverLine}\n[::1]:7000 ${otherLine}\n`);
});

test('comments and blank lines are allowed; a damaged line is an error, not skipped', async () => {
  const dir = await tempDir();
  const path = join(dir, 'known_servers');
  await writeFile(path, `# pinned\n\nhost:1 ${serverLine}`);
  assert.equal(await lookupKnownServer(path, 'host:1'), serverLine);
  assert.equal(await recordKnownServer(path, 'host:2', otherLine), 'added');
  assert.equal(await readFile(path, 'utf8'), `# pinned\n\nhost:1 ${serverLine}\nhost:2 ${otherLine}\n`);
  await writeFile(path, `host:1 ssh-ed25519 AAAA%%%\n`);
  await assert.rejects(lookupKnownServer(path, 'host:1'), {
    code: 'ERR_KNOWN_SERVERS_SYNTAX',
    message: /:1: /,
  });
});

test('a changed server key is refused unless replace is asked for', async () => {
  const dir = await tempDir();
  const path = join(dir, 'known_servers');
  await recordKnownServer(path, 'host:1', serverLine);
  await recordKnownServer(path, 'host:2', serverLine);
  await assert.rejects(recordKnownServer(path, 'host:1', otherLine), {
    code: 'ERR_KNOWN_SERVER_MISMATCH',
    message: /:1 pins host:1 to key SHA256:.*delete that line/,
  });
  assert.equal(await lookupKnownServer(path, 'host:1'), serverLine);
  assert.equal(await recordKnownServer(path, 'host:1', otherLine, { replace: true }), 'replaced');
  assert.equal(await lookupKnownServer(path, 'host:1'), otherLine);
  assert.equal(await lookupKnownServer(path, 'host:2'), serverLine);
});

test('bad arguments are refused', async () => {
  const dir = await tempDir();
  const path = join(dir, 'known_servers');
  await assert.rejects(recordKnownServer(path, 'host 1', serverLine), { code: 'ERR_KNOWN_SERVERS_SYNTAX' });
  await assert.rejects(recordKnownServer(path, 'host:1', 'ssh-rsa AAAA'), { code: 'ERR_KEY_FORMAT' });
});
