/**
 * What issue 11 found missing, against a real `mtt gui` process, a real server and client, a real
 * browser, and a private bus with a test tray host and a test notification server: a dead local
 * service on the card, in the tray and as a notification; a refused tunnel's retry and Retry now;
 * Pause all; Reconnect now; the settings view, preferences and export; recent connections and copy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { freePort } from '../../e2e/harness.js';
import { type RealSetup, SERVICE_BODY, startRealSetup } from '../../gui/real-setup.js';
import { waitForFile } from '../../gui/wait.js';
import { launchBrowser } from './lib/browser.js';
import { until } from './lib/desktop.js';
import { spawnGui } from './lib/gui-process.js';
import { TestNotificationServer } from './lib/notification-server.js';
import { startPrivateBus } from './lib/private-bus.js';
import { canConnect } from './lib/sshd.js';
import { findEntry, TestTrayHost } from './lib/tray-host.js';

const run = promisify(execFile);
const UI = 15_000;

async function curl(port: number): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${port}/`], {
    timeout: 10_000,
  });
  return stdout;
}

/** `mtt gui` for `setup` with its own HOME, bus, tray host and notification server, and a logged-in page. */
async function guiWithPage(t: TestContext, setup: RealSetup) {
  const home = await mkdtemp(join(tmpdir(), 'mtt-home-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const bus = await startPrivateBus();
  t.after(() => bus.close());
  const host = await TestTrayHost.start(bus.address);
  t.after(() => host.close());
  const notices = await TestNotificationServer.start(bus.address);
  t.after(() => notices.close());
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_RUNTIME_DIR: home,
    MTT_CONFIG_DIR: setup.dir,
    DBUS_SESSION_BUS_ADDRESS: bus.address,
  };
  const gui = spawnGui(t, ['--config', setup.configPath, '--no-window'], env);
  const url = (await gui.waitForOutput(/Dashboard: (\S+)/))[1]!;
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const ctx = await browser.context();
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin });
  const page = await ctx.newPage();
  await page.goto(url);
  return { gui, page, host, notices, home, item: await host.waitForItem(UI) };
}

const card = (page: Page, name: string) => page.locator(`[data-tunnel="${name}"]`);

test('a dead local service shows on the card, in the tray and as a notification', {
  timeout: 120_000,
}, async (t) => {
  const [remotePort, deadPort] = [await freePort(), await freePort()];
  const setup = await startRealSetup(t, [{ name: 'web', remotePort, localPort: deadPort }]);
  const { page, host, item, notices } = await guiWithPage(t, setup);
  await card(page, 'web').locator('[data-status="active"]').waitFor({ timeout: UI });
  // A visitor arrives; the local service is not there.
  await curl(remotePort).catch(() => '');
  await card(page, 'web').locator('.pill-local-down').waitFor({ timeout: UI });
  assert.match(
    (await card(page, 'web').locator('[data-field="local-down"]').textContent()) ?? '',
    /ECONNREFUSED/,
  );
  await until(
    'the tray to name it',
    async () => findEntry((await host.menu(item)).root, 'web (local service down)') !== undefined,
  );
  const n = await notices.waitFor((x) => /local service is down/.test(x.summary));
  assert.match(n.body, new RegExp(`127\\.0\\.0\\.1:${deadPort} does not answer`));
  const props = await host.properties(item);
  assert.match(String(props.get('Title')?.value), /1 local service down/);
});

test('a refused tunnel shows its next try; Retry now opens it once the port is free', {
  timeout: 120_000,
}, async (t) => {
  const remotePort = await freePort();
  // Something else holds the public port on the server's machine.
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(remotePort, '0.0.0.0', r));
  t.after(() => squatter.close());
  const setup = await startRealSetup(t, []);
  const { page, notices } = await guiWithPage(t, setup);
  // Add the tunnel through the form.
  await page.getByRole('button', { name: '+ Add tunnel' }).click();
  await page.getByLabel('Name').fill('web');
  await page.getByLabel('Public port (on the server)').fill(String(remotePort));
  await page.getByLabel('Local port').fill(String(setup.service.port));
  await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
  const c = card(page, 'web');
  await c.locator('[data-status="error"]').waitFor({ timeout: UI });
  await c
    .locator('[data-field="retry"]', { hasText: /^Next try in \d+ (s|min)\.$/ })
    .waitFor({ timeout: UI });
  await notices.waitFor((x) => x.summary === 'MiniTCPTunnel: tunnel web refused');
  await new Promise<void>((r) => squatter.close(() => r()));
  await c.getByRole('button', { name: 'Retry now' }).click();
  await c.locator('[data-status="active"]').waitFor({ timeout: UI });
  assert.equal(await curl(remotePort), SERVICE_BODY);
});

test('Pause all closes every tunnel on the server and Resume reopens them; the config is untouched', {
  timeout: 120_000,
}, async (t) => {
  const remotePort = await freePort();
  const setup0 = await startRealSetup(t, []);
  const setup = await withTunnel(setup0, { name: 'web', remotePort, localPort: setup0.service.port });
  const before = await readFile(setup.configPath, 'utf8');
  const { page } = await guiWithPage(t, setup);
  await card(page, 'web').locator('[data-status="active"]').waitFor({ timeout: UI });
  await page.getByRole('button', { name: 'Pause all' }).click();
  await page.locator('[data-paused]').waitFor({ timeout: UI });
  await until('the public port to close', async () => !(await canConnect(remotePort)), UI);
  await page.locator('[data-paused]').getByRole('button', { name: 'Resume all' }).click();
  await page.locator('[data-paused]').waitFor({ state: 'detached', timeout: UI });
  await card(page, 'web').locator('[data-status="active"]').waitFor({ timeout: UI });
  assert.equal(await curl(remotePort), SERVICE_BODY);
  assert.equal(await readFile(setup.configPath, 'utf8'), before, 'pausing does not touch the config');
});

test('refused by the server: a notification, the countdown, and Reconnect now retries at once', {
  timeout: 120_000,
}, async (t) => {
  const setup = await startRealSetup(t, [], { clientAllowed: false });
  // A long backoff, so that only Reconnect now can explain a quick reconnection.
  await editConfig(setup.configPath, (c) => {
    c.reconnectMaxSeconds = 60;
  });
  const { page, notices } = await guiWithPage(t, setup);
  const refused = await notices.waitFor((n) => n.summary === 'MiniTCPTunnel: refused by the server');
  assert.equal(refused.urgency, 2, 'critical');
  assert.match(refused.body, /allow-list/);
  const banner = page.locator('[data-connection="rejected"]');
  // Let the backoff grow past a few seconds.
  await page
    .locator('[data-connection="rejected"]', { hasText: /next try in ([4-9]|\d\d) s|next try in \d+ min/ })
    .waitFor({ timeout: 60_000 });
  // The admin adds the key meanwhile.
  await setup.server.close();
  await setup.restartServer({ clientAllowed: true });
  const clicked = Date.now();
  await banner.getByRole('button', { name: 'Reconnect now' }).click();
  await page.locator('[data-connection="connected"]').waitFor({ timeout: UI });
  assert.ok(Date.now() - clicked < 4000, 'connected long before the next scheduled try');
  await notices.waitFor((n) => n.summary === 'MiniTCPTunnel: connected again');
});

test('settings: saved live with only the changed field; wrong values named; preferences; export', {
  timeout: 120_000,
}, async (t) => {
  const setup = await startRealSetup(t, []);
  const { page, home } = await guiWithPage(t, setup);
  await page.getByRole('tab', { name: 'Settings' }).click();
  assert.equal(await page.locator('[data-path="config"]').textContent(), setup.configPath);
  assert.equal(await page.locator('[data-path="identity"]').textContent(), join(setup.dir, 'id_ed25519'));

  // Checked in the page with the client's own rules: nothing is sent.
  await page.getByLabel('Heartbeat interval (seconds)').fill('0');
  await page.getByLabel('Server address').fill('nohost');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page
    .locator('.field-error[data-field="heartbeatSeconds"]', {
      hasText: 'heartbeat interval must be at least 0.05 seconds',
    })
    .waitFor({ timeout: UI });
  await page
    .locator('.field-error[data-field="server"]', { hasText: /server address must be "host:port"/ })
    .waitFor({ timeout: UI });
  await page.getByRole('button', { name: 'Undo changes' }).click();

  const before = JSON.parse(await readFile(setup.configPath, 'utf8')) as Record<string, unknown>;
  await page.getByLabel('Longest reconnect wait (seconds)').fill('5');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Saved. The client uses the new settings now.').waitFor({ timeout: UI });
  const after = JSON.parse(await readFile(setup.configPath, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(after, { ...before, reconnectMaxSeconds: 5 }, 'only the changed field was written');
  await page.getByRole('tab', { name: /^Events/ }).click();
  await page
    .locator('.event', { hasText: 'settings changed: longest reconnect wait' })
    .waitFor({ timeout: UI });
  await page.getByRole('tab', { name: 'Settings' }).click();

  // Start at login: an XDG autostart entry that desktop-file-validate accepts; off removes it.
  const autostart = join(home, '.config', 'autostart', 'minitcptunnel.desktop');
  await page.getByRole('switch', { name: /^Start at login/ }).click();
  const entry = await waitForFile(autostart, (s) => s.includes('Exec='));
  assert.match(entry, new RegExp(`gui --config ${setup.configPath.replace(/[.]/g, '\\.')}$`, 'm'));
  await run('desktop-file-validate', [autostart]).catch((err: { stdout?: string; code?: string }) => {
    if (err.code === 'ENOENT') throw new Error('apt-get install -y desktop-file-utils');
    assert.fail(`desktop-file-validate: ${err.stdout}`);
  });
  await page.getByRole('switch', { name: /^Start at login/ }).click();
  await until(
    'the autostart entry to go',
    async () =>
      await readFile(autostart).then(
        () => false,
        () => true,
      ),
    UI,
  );
  // The launcher with its icon.
  await page.getByRole('switch', { name: /^In the applications menu/ }).click();
  const launcher = await waitForFile(join(home, '.local/share/applications/minitcptunnel.desktop'), (s) =>
    s.includes('Icon=minitcptunnel'),
  );
  assert.match(launcher, /^Name=MiniTCPTunnel$/m);
  await run('desktop-file-validate', [join(home, '.local/share/applications/minitcptunnel.desktop')]);
  // Notifications off is remembered.
  await page.getByRole('switch', { name: /^Desktop notifications/ }).click();
  await waitForFile(join(setup.dir, 'gui.json'), (s) => /"notifications": false/.test(s));

  // Export gives the file as it is on disk.
  const exported = await page.evaluate(async () => (await fetch('/api/config')).text());
  assert.equal(exported, await readFile(setup.configPath, 'utf8'));
});

test('recent connections list the visitor; the public address copies', { timeout: 120_000 }, async (t) => {
  const remotePort = await freePort();
  const setup0 = await startRealSetup(t, []);
  const setup = await withTunnel(setup0, { name: 'web', remotePort, localPort: setup0.service.port });
  const { page } = await guiWithPage(t, setup);
  const c = card(page, 'web');
  await c.locator('[data-status="active"]').waitFor({ timeout: UI });
  assert.equal(await curl(remotePort), SERVICE_BODY);
  await c.getByText('Recent connections (1)').click();
  const row = c.locator('tbody tr').first();
  await row.waitFor({ timeout: UI });
  assert.match((await row.textContent()) ?? '', /127\.0\.0\.1:\d+/);
  await c.locator('[data-stat="bytes-out"]', { hasNotText: /^0 B$/ }).waitFor({ timeout: UI });
  await c.getByRole('button', { name: 'Copy: public address of web' }).click();
  await c
    .getByRole('button', { name: 'Copy: public address of web' })
    .filter({ hasText: 'Copied' })
    .waitFor({ timeout: UI });
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), `127.0.0.1:${remotePort}`);
  assert.equal(
    await c.getByRole('link', { name: `Open 127.0.0.1:${remotePort} in the browser` }).getAttribute('href'),
    `http://127.0.0.1:${remotePort}/`,
  );
});

test("a tunnel's limits show on its card as the server applies them, under the key's ceiling", {
  timeout: 120_000,
}, async (t) => {
  const remotePort = await freePort();
  const setup0 = await startRealSetup(t, [], { keyOptions: 'ratelimit="1MB/s"' });
  const setup = await withTunnel(setup0, {
    name: 'web',
    remotePort,
    localPort: setup0.service.port,
    maxConnections: 20,
    rateLimit: '10MB/s',
  });
  const { page } = await guiWithPage(t, setup);
  const c = card(page, 'web');
  await c.locator('[data-status="active"]').waitFor({ timeout: UI });
  await c
    .locator('[data-field="limits"]', { hasText: /^20 connections, 1 MB\/s each way/ })
    .waitFor({ timeout: UI });
  assert.equal(
    await c.locator('[data-field="limits"]').textContent(),
    "20 connections, 1 MB/s each way (the server's ceiling for this key; asked for 20 connections, 10 MB/s each way)",
  );
  assert.equal(await curl(remotePort), SERVICE_BODY, 'the limited tunnel carries traffic');
  // Paused, the tunnel is not open: the card shows what it asks for.
  await page.getByRole('button', { name: 'Pause all' }).click();
  await c
    .locator('[data-field="limits"]', { hasText: 'asked for; the server applies them once open' })
    .waitFor({ timeout: UI });
  assert.match(
    (await c.locator('[data-field="limits"]').textContent()) ?? '',
    /^20 connections, 10 MB\/s each way/,
  );
});

async function editConfig(path: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  const cfg = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(cfg);
  await writeFile(path, JSON.stringify(cfg, null, 2) + '\n');
}

/** The setup with one tunnel written into its config before mtt starts. */
async function withTunnel(setup: RealSetup, tunnel: Record<string, unknown>): Promise<RealSetup> {
  await editConfig(setup.configPath, (c) => {
    c.tunnels = [tunnel];
  });
  return setup;
}
