/**
 * Makes the README screenshots (docs/gui-*.png) against a demo state. Not part of `npm test`:
 *   npm run screenshots
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDashboard } from '../../../src/gui/dashboard/index.js';
import { FakeClient } from '../../gui/fake-client.js';
import { launchBrowser } from './lib/browser.js';

const OUT = process.env.MTT_SCREENSHOT_DIR ?? join(process.cwd(), 'docs');

/** A believable state: three tunnels with traffic history, one failing, one disabled. */
function demoClient(): FakeClient {
  const c = new FakeClient();
  c.connection = {
    kind: 'connected',
    serverFingerprint: 'SHA256:q1Xv0dXU4mYzL3oM9bJ2cC8pWk7nRtE5sAfGhJkLmNo',
    since: Date.now() - 3 * 3600_000,
  };
  c.add({ name: 'web', remotePort: 8080, localHost: '127.0.0.1', localPort: 3000 });
  c.add({ name: 'postgres', remotePort: 15432, localHost: 'db.lan', localPort: 5432 });
  c.add({ name: 'ssh-nas', remotePort: 2222, localHost: '192.168.1.20', localPort: 22 });
  c.add({ name: 'grafana', remotePort: 80, localHost: '127.0.0.1', localPort: 3001, enabled: false });
  c.patch('web', {
    activeConnections: 3,
    totalConnections: 1842,
    bytesIn: 48_213_004,
    bytesOut: 912_443_110,
  });
  c.patch('postgres', {
    activeConnections: 1,
    totalConnections: 57,
    bytesIn: 3_114_224,
    bytesOut: 71_004_932,
  });
  c.patch('ssh-nas', {
    status: 'error',
    error: 'port 2222 is not allowed for this key (allowed: 8000-9000, 15000-16000)',
  });
  c.events = [
    { at: Date.now() - 3 * 3600_000, level: 'info', message: 'connected to tunnel.example.net:7835' },
    {
      at: Date.now() - 3 * 3600_000 + 40,
      level: 'info',
      message: 'tunnel open on tunnel.example.net:8080',
      tunnel: 'web',
    },
    {
      at: Date.now() - 3 * 3600_000 + 55,
      level: 'error',
      message: 'port 2222 is not allowed for this key',
      tunnel: 'ssh-nas',
    },
    {
      at: Date.now() - 600_000,
      level: 'warn',
      message: 'dial 127.0.0.1:3000 failed: ECONNREFUSED',
      tunnel: 'web',
    },
  ];
  return c;
}

test('screenshots of the dashboard', { timeout: 120_000 }, async (t) => {
  const client = demoClient();
  const dash = await startDashboard({ state: client, tunnels: client, sampleMs: 100 });
  t.after(() => dash.close());
  // Feed varied traffic the whole time so the sparklines have a shape and the rates are not zero.
  let i = 0;
  const traffic = setInterval(() => {
    const web = client.views.get('web')!;
    const pg = client.views.get('postgres')!;
    const wave = Math.sin(i / 4) + 1.2;
    client.patch('web', {
      bytesIn: web.bytesIn + Math.round(4000 * wave),
      bytesOut: web.bytesOut + Math.round(30000 * wave + (i % 7) * 4000),
    });
    client.patch('postgres', {
      bytesIn: pg.bytesIn + (i % 5) * 900,
      bytesOut: pg.bytesOut + ((i * 7) % 11) * 5000,
    });
    i++;
  }, 100);
  t.after(() => clearInterval(traffic));
  await new Promise((r) => setTimeout(r, 4000));
  const b = await launchBrowser();
  t.after(() => b.close());
  for (const scheme of ['light', 'dark'] as const) {
    const ctx = await b.context({ colorScheme: scheme, width: 1100, height: 880 });
    const page = await ctx.newPage();
    await page.goto(dash.loginUrl);
    await page.locator('[data-tunnel="web"]').waitFor({ timeout: 10_000 });
    const file = join(OUT, `gui-dashboard${scheme === 'dark' ? '-dark' : ''}.png`);
    await page.screenshot({ path: file });
    assert.ok((await stat(file)).size > 10_000);
    if (scheme === 'light') {
      await page.getByRole('button', { name: '+ Add tunnel' }).click();
      await page.getByLabel('Public port (on the server)').fill('99999');
      await page.getByLabel('Name').fill('api');
      await page.getByLabel('Local port').fill('4000');
      await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
      await page.locator('.field-error').first().waitFor({ timeout: 5000 });
      await page.screenshot({ path: join(OUT, 'gui-add-tunnel.png') });
      await page.keyboard.press('Escape');
      client.setConnection({
        kind: 'rejected',
        reason: 'unknown_key',
        message: 'this key is not on the server allow-list',
        nextTryAt: Date.now() + 28_000,
      });
      await page.locator('[data-connection="rejected"]').waitFor({ timeout: 5000 });
      await page.screenshot({
        path: join(OUT, 'gui-rejected.png'),
        clip: { x: 0, y: 0, width: 1100, height: 260 },
      });
      client.setConnection({
        kind: 'connected',
        serverFingerprint: 'SHA256:q1Xv0dXU4mYzL3oM9bJ2cC8pWk7nRtE5sAfGhJkLmNo',
        since: Date.now(),
      });
    }
    await ctx.close();
  }
});
