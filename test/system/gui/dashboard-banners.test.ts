/** The connection banner and the side views in headless Chromium: exact states from a fake, and a real refusal. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDashboard } from '../../../src/gui/dashboard/index.js';
import { createLogger } from '../../../src/util/logger.js';
import { FakeClient } from '../../gui/fake-client.js';
import { startHeadlessGui, startRealSetup } from '../../gui/real-setup.js';
import { launchBrowser } from './lib/browser.js';

const UI_TIMEOUT = 15_000;

test('banners: reconnecting counts down, unknown_key offers the key line, views show identity and events', {
  timeout: 90_000,
}, async (t) => {
  const fake = new FakeClient();
  fake.events.push({
    at: Date.now(),
    level: 'warn',
    message: 'dial 127.0.0.1:3000 failed: ECONNREFUSED',
    tunnel: 'web',
  });
  const dash = await startDashboard({ state: fake, tunnels: fake });
  let dashClosed = false;
  t.after(() => (dashClosed ? undefined : dash.close()));
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const ctx = await browser.context({ colorScheme: 'dark' });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: dash.origin });
  const page = await ctx.newPage();
  await page.goto(dash.loginUrl);
  await page.locator('[data-connection="connected"]').waitFor({ timeout: UI_TIMEOUT });

  fake.setConnection({
    kind: 'reconnecting',
    attempt: 4,
    nextTryAt: Date.now() + 6000,
    lastError: 'connect ECONNREFUSED',
  });
  const banner = page.locator('[data-connection="reconnecting"]');
  await banner.waitFor({ timeout: UI_TIMEOUT });
  assert.match((await banner.textContent()) ?? '', /next try in [56] s/);
  assert.match((await banner.textContent()) ?? '', /ECONNREFUSED/);
  // The countdown runs in the page, with no new state from the server.
  await page
    .locator('[data-connection="reconnecting"]', { hasText: /next try in [34] s/ })
    .waitFor({ timeout: 5000 });

  fake.setConnection({
    kind: 'rejected',
    reason: 'busy',
    message: 'another client with a different key is connected',
  });
  const busy = page.locator('[data-connection="rejected"]');
  await busy.waitFor({ timeout: UI_TIMEOUT });
  assert.match((await busy.textContent()) ?? '', /different key.*not retrying/);
  assert.equal(await page.locator('[data-keyline]').count(), 0);

  fake.setConnection({
    kind: 'rejected',
    reason: 'unknown_key',
    message: 'key not allowed',
    nextTryAt: Date.now() + 30_000,
  });
  const keyline = page.locator('[data-keyline]');
  await keyline.waitFor({ timeout: UI_TIMEOUT });
  const line = fake.snapshot().identity.publicKeyLine;
  assert.equal(await keyline.textContent(), line);
  await page.getByRole('button', { name: 'Copy: public key line' }).click();
  await page
    .getByRole('button', { name: 'Copy: public key line' })
    .filter({ hasText: 'Copied' })
    .waitFor({ timeout: 5000 });
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), line);

  await page.getByRole('tab', { name: 'Identity' }).click();
  assert.equal(
    await page.locator('[data-identity="fingerprint"]').textContent(),
    'SHA256:fakeClientKeyFingerprint',
  );
  await page.getByRole('tab', { name: /Events/ }).click();
  await page.locator('.event', { hasText: 'dial 127.0.0.1:3000 failed' }).waitFor({ timeout: UI_TIMEOUT });

  // The page notices when mtt goes away, and shows one offline state: no stale green banner, nothing
  // left clickable.
  await page.getByRole('tab', { name: /Tunnels/ }).click();
  fake.setConnection({ kind: 'connected', serverFingerprint: 'SHA256:x', since: Date.now() });
  await page.locator('[data-connection="connected"]').waitFor({ timeout: UI_TIMEOUT });
  dashClosed = true;
  await dash.close();
  const offline = page.locator('[data-offline]');
  await offline.waitFor({ timeout: UI_TIMEOUT });
  assert.match((await offline.textContent()) ?? '', /Not connected to mtt.*mtt does not answer/);
  assert.equal(await page.locator('[data-connection]').count(), 0, 'no stale connection banner');
  assert.equal(await page.locator('.live').getAttribute('inert'), '', 'the stale state is inert');
  assert.equal(await page.getByRole('button', { name: '+ Add tunnel' }).count(), 0, 'no usable controls');
});

test('a real client whose key the server does not know shows unknown_key with its own key line', {
  timeout: 90_000,
}, async (t) => {
  const setup = await startRealSetup(t, [], { clientAllowed: false });
  const loginUrl = await startHeadlessGui(t, setup, createLogger({ write: () => {} }));
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await (await browser.context()).newPage();
  await page.goto(loginUrl);
  const keyline = page.locator('[data-connection="rejected"] [data-keyline]');
  await keyline.waitFor({ timeout: UI_TIMEOUT });
  assert.equal(await keyline.textContent(), setup.clientPublicKeyLine);
});
