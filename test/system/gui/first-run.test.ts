/**
 * First run (issue 11): `mtt gui` with no --config and an empty config folder opens a setup view that
 * made the key, shows its public key line, takes the server's address and key, writes the config and
 * connects: a real server that the admin (the test) told about the key.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  parseAllowList,
} from '../../../src/identity/index.js';
import { startServer } from '../../../src/server/index.js';
import { launchBrowser } from './lib/browser.js';
import { spawnGui } from './lib/gui-process.js';

const UI = 15_000;

test('first run: the setup view makes the key, takes the server, writes the config and connects', {
  timeout: 120_000,
}, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mtt-first-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  // The mtt config folder does not even exist yet.
  const configDir = join(root, 'home', '.config', 'mtt');
  const gui = spawnGui(t, ['--no-window'], {
    ...process.env,
    HOME: join(root, 'home'),
    MTT_CONFIG_DIR: configDir,
    XDG_RUNTIME_DIR: root,
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
  });
  const url = (await gui.waitForOutput(/Dashboard: (\S+)/))[1]!;
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await (await browser.context()).newPage();
  await page.goto(url);
  await page.locator('[data-setup]').waitFor({ timeout: UI });

  // The key exists already, private and 0600, and the page shows its public line.
  assert.equal((await stat(join(configDir, 'id_ed25519'))).mode & 0o777, 0o600);
  const keyLine = (await page.locator('[data-setup-key]').textContent()) ?? '';
  assert.match(keyLine, /^ssh-ed25519 AAAA[A-Za-z0-9+/=]+/);
  assert.equal(keyLine, (await readFile(join(configDir, 'id_ed25519.pub'), 'utf8')).trim());

  // The admin allows that key on a server.
  const serverIdentity = generateIdentity('first-run-server');
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    identity: serverIdentity,
    allowList: parseAllowList(keyLine, 'test'),
    publicHost: '127.0.0.1',
    allowPorts: [{ low: 1024, high: 65535 }],
  });
  t.after(() => server.close());

  // Wrong answers are named; nothing is written.
  await page.getByRole('button', { name: 'Save and connect' }).click();
  await page
    .locator('.field-error[data-field="server"]', { hasText: 'server address is required' })
    .waitFor({ timeout: UI });
  await page.getByLabel('Server address').fill('127.0.0.1:99999');
  await page.getByLabel('Server key (optional)').fill('ssh-rsa AAAA');
  await page.getByRole('button', { name: 'Save and connect' }).click();
  await page.locator('.field-error[data-field="serverKey"]').waitFor({ timeout: UI });
  assert.match(
    (await page.locator('.field-error[data-field="server"]').textContent()) ?? '',
    /from 1 to 65535/,
  );
  await assert.rejects(stat(join(configDir, 'client.json')), /ENOENT/);

  await page.getByLabel('Server address').fill(`127.0.0.1:${server.address.port}`);
  await page.getByLabel('Server key (optional)').fill(formatPublicKeyLine(serverIdentity.publicRaw, 'srv'));
  await page.getByRole('button', { name: 'Save and connect' }).click();
  // The same page becomes the dashboard, connected, with the server's key pinned.
  const banner = page.locator('[data-connection="connected"]');
  await banner.waitFor({ timeout: UI });
  assert.match(
    (await banner.textContent()) ?? '',
    new RegExp(fingerprint(serverIdentity.publicRaw).replace(/[+/]/g, '\\$&')),
  );
  const written = JSON.parse(await readFile(join(configDir, 'client.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.deepEqual(written, {
    server: `127.0.0.1:${server.address.port}`,
    serverKey: formatPublicKeyLine(serverIdentity.publicRaw, 'srv'),
    tunnels: [],
  });
  assert.equal((await stat(join(configDir, 'client.json'))).mode & 0o777, 0o600);
  // And it is a normal dashboard now: a tunnel can be added.
  await page.getByRole('button', { name: '+ Add tunnel' }).waitFor({ timeout: UI });
  gui.child.kill('SIGTERM');
  assert.equal((await gui.exited(10_000))[0], 0, gui.stderr());

  // The next start finds the config and goes straight to the dashboard.
  const again = spawnGui(t, ['--no-window'], {
    ...process.env,
    MTT_CONFIG_DIR: configDir,
    XDG_RUNTIME_DIR: root,
  });
  const url2 = (await again.waitForOutput(/Dashboard: (\S+)/))[1]!;
  await page.goto(url2);
  await page.locator('[data-connection="connected"]').waitFor({ timeout: UI });
  assert.equal(await page.locator('[data-setup]').count(), 0);
});
