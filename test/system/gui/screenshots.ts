/**
 * Makes the screenshots in docs/ (gui-*.png). Not part of the test runs: `npm run screenshots`.
 * The dashboard states come from a demo state in headless Chromium; the notification one is a real
 * desktop (Xvfb, xfwm4, xfce4-panel with the tray icon, xfce4-notifyd) running a real `mtt gui`.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDashboard } from '../../../src/gui/dashboard/index.js';
import { LateClient } from '../../../src/gui/setup.js';
import { freePort } from '../../e2e/harness.js';
import { startRealSetup } from '../../gui/real-setup.js';
import { launchBrowser } from './lib/browser.js';
import { demoClient, demoGui } from './lib/demo-state.js';
import { startDesktop, until } from './lib/desktop.js';
import { spawnGui } from './lib/gui-process.js';

const OUT = process.env.MTT_SCREENSHOT_DIR ?? join(process.cwd(), 'docs');
const shot = (name: string) => join(OUT, `gui-${name}.png`);

test('screenshots of the dashboard', { timeout: 180_000 }, async (t) => {
  const client = demoClient();
  const dash = await startDashboard({
    state: client,
    tunnels: client,
    sampleMs: 100,
    extra: () => ({ gui: demoGui() }),
  });
  t.after(() => dash.close());
  // Varied traffic the whole time, so the sparklines have a shape and the rates are not zero.
  let i = 0;
  const traffic = setInterval(() => {
    const web = client.views.get('web');
    if (!web) return;
    const wave = Math.sin(i / 4) + 1.2;
    client.patch('web', {
      bytesIn: web.bytesIn + Math.round(4000 * wave),
      bytesOut: web.bytesOut + Math.round(30000 * wave + (i % 7) * 4000),
    });
    i++;
  }, 100);
  t.after(() => clearInterval(traffic));
  await new Promise((r) => setTimeout(r, 4000));
  const b = await launchBrowser();
  t.after(() => b.close());
  for (const scheme of ['light', 'dark'] as const) {
    const ctx = await b.context({ colorScheme: scheme, width: 1100, height: 1000 });
    const page = await ctx.newPage();
    await page.goto(dash.loginUrl);
    await page.locator('[data-tunnel="web"]').waitFor({ timeout: 10_000 });
    await page.locator('[data-tunnel="web"] details summary').click();
    await page.screenshot({ path: shot(scheme === 'dark' ? 'dashboard-dark' : 'dashboard') });
    if (scheme === 'light') {
      await page.getByRole('button', { name: '+ Add tunnel' }).click();
      await page.getByLabel('Name').fill('api');
      await page.getByLabel('Public port (on the server)').fill('2222');
      await page.getByLabel('Local host').fill('999.999.1.1');
      await page.getByLabel('Local port').fill('4000');
      await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
      await page.locator('.field-error[data-field="remotePort"]').waitFor({ timeout: 5000 });
      await page.screenshot({ path: shot('add-tunnel') });
      await page.keyboard.press('Escape');
      await page.getByRole('tab', { name: 'Settings' }).click();
      await page.screenshot({ path: shot('settings'), fullPage: true });
      await page.getByRole('tab', { name: /^Tunnels/ }).click();
      client.setConnection({
        kind: 'rejected',
        reason: 'unknown_key',
        message: 'this key is not on the server allow-list',
        nextTryAt: Date.now() + 28_000,
      });
      await page.locator('[data-connection="rejected"]').waitFor({ timeout: 5000 });
      await page.screenshot({ path: shot('rejected'), clip: { x: 0, y: 0, width: 1100, height: 330 } });
      client.setConnection({
        kind: 'connected',
        serverFingerprint: 'SHA256:q1Xv0dXU4mYzL3oM9bJ2cC8pWk7nRtE5sAfGhJkLmNo',
        since: Date.now(),
      });
    }
    await ctx.close();
  }
  // Narrow: a phone or a window snapped to a third of the screen.
  const narrow = await b.context({ width: 360, height: 740 });
  const np = await narrow.newPage();
  await np.goto(dash.loginUrl);
  await np.locator('[data-tunnel="web"]').waitFor({ timeout: 10_000 });
  await np.screenshot({ path: shot('narrow'), fullPage: true });
  // Disconnected: mtt went away under an open page.
  const off = await b.context({ width: 1100, height: 700 });
  const op = await off.newPage();
  await op.goto(dash.loginUrl);
  await op.locator('[data-tunnel="web"]').waitFor({ timeout: 10_000 });
  clearInterval(traffic);
  await dash.close();
  await op.locator('[data-offline]').waitFor({ timeout: 10_000 });
  await op.screenshot({ path: shot('disconnected') });

  // First run.
  const setup = {
    configPath: '/home/ana/.config/mtt/client.json',
    identityPath: '/home/ana/.config/mtt/id_ed25519',
    publicKeyLine:
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq7m9cRr0yW2n8VxH1sLkPbTf4dJzE6uQa3KgN5pXwY ana@laptop',
    fingerprint: 'SHA256:8bC1m0QxV2e9n5rJtY7aKdLpWf3sHz6uGiE4oNvRkXc',
    createdKey: true,
  };
  const late = new LateClient(setup);
  const first = await startDashboard({ state: late, tunnels: late, extra: () => ({ setup }) });
  t.after(() => first.close());
  const fc = await b.context({ width: 1100, height: 780 });
  const fp = await fc.newPage();
  await fp.goto(first.loginUrl);
  await fp.locator('[data-setup]').waitFor({ timeout: 10_000 });
  await fp.getByLabel('Server address').fill('tunnel.example.net:7835');
  await fp.screenshot({ path: shot('first-run') });
  for (const name of [
    'dashboard',
    'dashboard-dark',
    'add-tunnel',
    'settings',
    'rejected',
    'narrow',
    'disconnected',
    'first-run',
  ]) {
    assert.ok((await stat(shot(name))).size > 10_000, name);
  }
});

test('screenshot of a notification and the tray icon on a real desktop', { timeout: 180_000 }, async (t) => {
  const desk = await startDesktop(t, { width: 1280, height: 800 });
  await desk.startPanel();
  await desk.startNotifyd();
  const [remotePort, deadPort] = [await freePort(), await freePort()];
  const setup = await startRealSetup(t, [{ name: 'postgres', remotePort, localPort: deadPort }]);
  const gui = spawnGui(t, ['--config', setup.configPath], {
    ...desk.env,
    MTT_CONFIG_DIR: setup.dir,
    MTT_BROWSER: '/usr/bin/chromium',
  });
  await gui.waitForOutput(/Dashboard: http/);
  await until('the window to log in', async () => /a browser logged in/.test(gui.stderr()), 30_000);
  await new Promise((r) => setTimeout(r, 2000));
  // A visitor arrives while the local service is down: the card, the tray icon and a notification say so.
  const { connect } = await import('node:net');
  const s = connect({ host: '127.0.0.1', port: remotePort });
  s.on('error', () => {});
  await until(
    'the notification to show',
    async () =>
      (
        await desk.x('xdotool', ['search', '--onlyvisible', '--class', 'xfce4-notifyd']).catch(() => '')
      ).trim() !== '',
    20_000,
  );
  await new Promise((r) => setTimeout(r, 1000));
  await desk.screenshot(shot('notifications'));
  s.destroy();
  assert.ok((await stat(shot('notifications'))).size > 10_000);
  gui.child.kill('SIGTERM');
  await gui.exited(15_000);
});
