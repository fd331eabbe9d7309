/**
 * The dashboard in headless Chromium against a real server, a real client started from a config file
 * (through guiCommand) and a real local HTTP service, all on loopback; curl goes through the tunnel.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadClientConfig } from '../../../src/config/client-config-file.js';
import { createLogger } from '../../../src/util/logger.js';
import { freePort, SERVICE_BODY, startHeadlessGui, startRealSetup } from '../../gui/real-setup.js';
import { retryUntil, waitForFile } from '../../gui/wait.js';
import { launchBrowser } from './lib/browser.js';

const run = promisify(execFile);
const UI_TIMEOUT = 15_000;

async function curl(port: number): Promise<{ code: number; body: string }> {
  try {
    const { stdout } = await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${port}/`], {
      timeout: 10_000,
    });
    return { code: 0, body: stdout };
  } catch (err) {
    return { code: (err as { code?: number }).code ?? -1, body: '' };
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

test('the dashboard drives a real client: login, add, traffic, validation, disable/enable, config file', {
  timeout: 180_000,
}, async (t) => {
  const setup = await startRealSetup(t);
  const logs: string[] = [];
  const loginUrl = await startHeadlessGui(
    t,
    setup,
    createLogger({ level: 'debug', format: 'json', write: (l) => logs.push(l) }),
    { exitCode: 0 },
  );
  const origin = new URL(loginUrl).origin;
  assert.equal(new URL(loginUrl).hostname, '127.0.0.1');

  const browser = await launchBrowser();
  t.after(() => browser.close());

  await t.test('without the token the dashboard answers 401', async () => {
    const ctx = await browser.context();
    const page = await ctx.newPage();
    const res = await page.goto(`${origin}/`);
    assert.equal(res?.status(), 401);
    const api = await page.goto(`${origin}/api/state`);
    assert.equal(api?.status(), 401);
    await ctx.close();
  });

  const ctx = await browser.context();
  const page = await ctx.newPage();
  const card = page.locator('[data-tunnel="web"]');
  const remotePort = await freePort();

  await t.test('the login link opens the dashboard, cleans the URL and shows the connection', async () => {
    await page.goto(loginUrl);
    assert.equal(page.url(), `${origin}/`);
    const banner = page.locator('[data-connection="connected"]');
    await banner.waitFor({ timeout: UI_TIMEOUT });
    assert.match(
      (await banner.textContent()) ?? '',
      new RegExp(setup.serverFingerprint.replace(/[+/]/g, '\\$&')),
    );
    await page.getByRole('tab', { name: 'Identity' }).click();
    assert.equal(await page.locator('[data-identity="key"]').textContent(), setup.clientPublicKeyLine);
    await page.getByRole('tab', { name: /Tunnels/ }).click();
  });

  await t.test('an invalid port shows a field error and changes nothing', async () => {
    await page.getByRole('button', { name: '+ Add tunnel' }).click();
    await page.getByLabel('Name').fill('web');
    await page.getByLabel('Public port (on the server)').fill('70000');
    await page.getByLabel('Local host').fill('127.0.0.1');
    await page.getByLabel('Local port').fill(String(setup.service.port));
    await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
    const err = page.locator('.field-error[data-field="remotePort"]');
    await err.waitFor({ timeout: UI_TIMEOUT });
    assert.match((await err.textContent()) ?? '', /65535/);
    assert.equal(await page.getByLabel('Public port (on the server)').getAttribute('aria-invalid'), 'true');
    const cfg = JSON.parse(await readFile(setup.configPath, 'utf8')) as { tunnels: unknown[] };
    assert.deepEqual(cfg.tunnels, []);
  });

  await t.test("a port outside the server's advertised range is refused in the form", async () => {
    // The real server allows 1024-65535 and says so in AuthOk; the page shows and checks it.
    await page
      .locator('[data-allowed-ports]', { hasText: 'ports 1024-65535' })
      .waitFor({ timeout: UI_TIMEOUT });
    await page.getByLabel('Public port (on the server)').fill('80');
    await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
    await page
      .locator('.field-error[data-field="remotePort"]', {
        hasText: 'the server lets this client open only ports 1024-65535',
      })
      .waitFor({ timeout: UI_TIMEOUT });
  });

  await t.test('adding a tunnel through the form makes it active, and curl goes through it', async () => {
    await page.getByLabel('Public port (on the server)').fill(String(remotePort));
    await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
    await page.locator('dialog[open]').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    await card.locator('[data-status="active"]').waitFor({ timeout: UI_TIMEOUT });
    assert.equal(await card.locator('[data-field="local"]').textContent(), `127.0.0.1:${setup.service.port}`);
    assert.match(
      (await card.locator('[data-field="public"]').textContent()) ?? '',
      new RegExp(`:${remotePort}$`),
    );
    const res = await curl(remotePort);
    assert.equal(res.code, 0);
    assert.equal(res.body, SERVICE_BODY);
  });

  await t.test("the card's connection count and byte counters change", async () => {
    await card.locator('[data-stat="total"]', { hasText: /^1 total/ }).waitFor({ timeout: UI_TIMEOUT });
    // Counters reach the page in batches: wait for them rather than read them once.
    await card.locator('[data-stat="bytes-out"]', { hasNotText: /^0 B$/ }).waitFor({ timeout: UI_TIMEOUT });
    await card.locator('[data-stat="bytes-in"]', { hasNotText: /^0 B$/ }).waitFor({ timeout: UI_TIMEOUT });
    // An open connection shows as active, and goes away when closed.
    const held = connect({ host: '127.0.0.1', port: remotePort });
    await new Promise((r) => held.once('connect', r));
    await card.locator('[data-stat="active"]', { hasText: /^1$/ }).waitFor({ timeout: UI_TIMEOUT });
    held.destroy();
    await card.locator('[data-stat="active"]', { hasText: /^0$/ }).waitFor({ timeout: UI_TIMEOUT });
    await card.locator('[data-stat="total"]', { hasText: /^2 total/ }).waitFor({ timeout: UI_TIMEOUT });
  });

  await t.test(
    "the client's own validation is shown on the field (a remote port already in use)",
    async () => {
      await page.getByRole('button', { name: '+ Add tunnel' }).click();
      await page.getByLabel('Name').fill('web2');
      await page.getByLabel('Public port (on the server)').fill(String(remotePort));
      await page.getByLabel('Local port').fill('9');
      await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
      const err = page.locator('.field-error[data-field="remotePort"]');
      await err.waitFor({ timeout: UI_TIMEOUT });
      assert.match((await err.textContent()) ?? '', /already used/);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.locator('dialog[open]').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
      assert.equal(await page.locator('[data-tunnel="web2"]').count(), 0);
    },
  );

  await t.test('disable and enable work, and the config file follows', async () => {
    await card.getByRole('switch').click();
    await card.locator('[data-status="disabled"]').waitFor({ timeout: UI_TIMEOUT });
    await retryUntil('the public port to close', () => refused(remotePort), 10_000);
    await waitForFile(setup.configPath, (text) => /"enabled": false/.test(text));
    await card.getByRole('switch').click();
    await card.locator('[data-status="active"]').waitFor({ timeout: UI_TIMEOUT });
    const res = await curl(remotePort);
    assert.equal(res.body, SERVICE_BODY);
    await waitForFile(setup.configPath, (text) => /"enabled": true/.test(text));
  });

  await t.test('the config file on disk is updated and still valid', async () => {
    const loaded = await loadClientConfig(setup.configPath);
    assert.deepEqual(loaded.config.tunnels, [
      {
        name: 'web',
        remotePort,
        localHost: '127.0.0.1',
        localPort: setup.service.port,
        enabled: true,
        compress: true,
      },
    ]);
    assert.equal(loaded.config.server, `127.0.0.1:${setup.server.address.port}`);
  });

  await t.test('edit and delete work through the card', async () => {
    await card.getByRole('button', { name: 'Edit web' }).click();
    await page.getByLabel('Name').fill('site');
    await page.getByRole('button', { name: 'Save' }).click();
    const renamed = page.locator('[data-tunnel="site"]');
    await renamed.locator('[data-status="active"]').waitFor({ timeout: UI_TIMEOUT });
    await renamed.getByRole('button', { name: 'Delete site', exact: true }).click();
    await renamed.getByRole('button', { name: 'Yes, delete site' }).click();
    await renamed.waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    await waitForFile(setup.configPath, (text) => /"tunnels": \[\]/.test(text));
    await retryUntil('the public port to close', () => refused(remotePort), 10_000);
  });
  await ctx.close();
});
