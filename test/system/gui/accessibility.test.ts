/**
 * Accessibility of every dashboard view and state (issue 11): axe-core 0 violations (WCAG 2.2 A/AA and
 * best practices) in light and dark, at 1280 and 320 px; the tab pattern by keyboard; field errors
 * announced and focused; switches named by their tunnel; switches still drawn in forced-colors mode.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startDashboard } from '../../../src/gui/dashboard/index.js';
import { LateClient } from '../../../src/gui/setup.js';
import { type AxeViolation, axeViolations, describeViolations } from './lib/axe.js';
import { launchBrowser, type TestBrowser } from './lib/browser.js';
import { demoClient, demoGui } from './lib/demo-state.js';

const UI = 10_000;

test('axe-core finds nothing in any view or state, light and dark, 1280 and 320 px', {
  timeout: 600_000,
}, async (t) => {
  const b = await launchBrowser();
  t.after(() => b.close());
  const found: string[] = [];
  let scanned = 0;
  for (const scheme of ['light', 'dark'] as const) {
    for (const width of [1280, 320]) {
      const client = demoClient();
      const dash = await startDashboard({
        state: client,
        tunnels: client,
        extra: () => ({ gui: demoGui() }),
      });
      // Closed here too, so that a failed step cannot leave a server holding the process open.
      t.after(() => dash.close());
      const ctx = await b.context({ colorScheme: scheme, width, height: 900, bypassCSP: true });
      const page = await ctx.newPage();
      const scan = async (where: string) => {
        const vs: AxeViolation[] = await axeViolations(page);
        scanned++;
        if (vs.length > 0) found.push(describeViolations(`${where} ${scheme} ${width}px`, vs));
      };
      const tab = (name: RegExp) => page.getByRole('tab', { name }).click();
      await page.goto(dash.loginUrl);
      await page.locator('[data-tunnel="web"]').waitFor({ timeout: UI });
      await page.locator('[data-tunnel="web"] details summary').click();
      await scan('tunnels (active, recent list open, local service down, refused with retry, disabled)');

      await page.getByRole('button', { name: '+ Add tunnel' }).click();
      await page.getByLabel('Name').fill('a b');
      await page.getByLabel('Public port (on the server)').fill('2222');
      await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
      await page.locator('.field-error[data-field="remotePort"]').waitFor({ timeout: UI });
      await page.locator('details.more').evaluate((d) => ((d as unknown as { open: boolean }).open = true));
      await scan('add dialog with field errors');
      await page.keyboard.press('Escape');

      await page.getByRole('button', { name: 'Quit mtt' }).click();
      await page.locator('dialog[open] [data-quit]').waitFor({ timeout: UI });
      await scan('quit dialog');
      await page.keyboard.press('Escape');

      for (const c of [
        {
          kind: 'reconnecting' as const,
          attempt: 3,
          nextTryAt: Date.now() + 9000,
          lastError: 'connect ECONNREFUSED',
        },
        {
          kind: 'rejected' as const,
          reason: 'unknown_key',
          message: 'key not allowed',
          nextTryAt: Date.now() + 9000,
        },
        {
          kind: 'rejected' as const,
          reason: 'in_use',
          message: 'this key is in use from 192.0.2.4 since 10:02',
        },
        { kind: 'connecting' as const, attempt: 2 },
      ]) {
        client.setConnection(c);
        await page.locator(`[data-connection="${c.kind}"]`).waitFor({ timeout: UI });
        await scan(`banner ${c.kind}${'reason' in c ? ` ${c.reason}` : ''}`);
      }
      client.paused = true;
      client.setConnection({ kind: 'connected', serverFingerprint: 'SHA256:x', since: Date.now() });
      await page.locator('[data-paused]').waitFor({ timeout: UI });
      await scan('paused');

      await tab(/^Events/);
      await page.locator('.event[data-count="5"]').waitFor({ timeout: UI });
      await scan('events (with a folded run)');
      await tab(/^Identity/);
      await scan('identity');
      await tab(/^Settings/);
      await page.getByLabel('Heartbeat interval (seconds)').fill('0');
      await page.getByRole('button', { name: 'Save settings' }).click();
      await page.locator('.field-error[data-field="heartbeatSeconds"]').waitFor({ timeout: UI });
      await scan('settings with a field error');

      for (const name of [...client.views.keys()]) client.remove(name);
      await tab(/^Tunnels/);
      await page.getByText('No tunnels yet').waitFor({ timeout: UI });
      await scan('no tunnels');

      await dash.close();
      await page.locator('[data-offline]').waitFor({ timeout: UI });
      await scan('offline (mtt gone)');
      await ctx.close();
    }
  }
  assert.ok(scanned >= 52, `scanned ${scanned} states`);
  assert.equal(found.join('\n'), '', 'axe-core violations');
});

test('axe-core finds nothing in the first-run setup view', { timeout: 180_000 }, async (t) => {
  const setup = {
    configPath: '/home/ana/.config/mtt/client.json',
    identityPath: '/home/ana/.config/mtt/id_ed25519',
    publicKeyLine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake ana@laptop',
    fingerprint: 'SHA256:fakeClientKeyFingerprintFakeClientKeyFingerp',
    createdKey: true,
  };
  const late = new LateClient(setup);
  const dash = await startDashboard({ state: late, tunnels: late, extra: () => ({ setup }) });
  t.after(() => dash.close());
  const b = await launchBrowser();
  t.after(() => b.close());
  const found: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    for (const width of [1280, 320]) {
      const ctx = await b.context({ colorScheme: scheme, width, height: 900, bypassCSP: true });
      const page = await ctx.newPage();
      await page.goto(dash.loginUrl);
      await page.locator('[data-setup]').waitFor({ timeout: UI });
      let vs = await axeViolations(page);
      if (vs.length) found.push(describeViolations(`setup ${scheme} ${width}px`, vs));
      await page.getByRole('button', { name: 'Save and connect' }).click();
      await page.locator('.field-error[data-field="server"]').waitFor({ timeout: UI });
      vs = await axeViolations(page);
      if (vs.length) found.push(describeViolations(`setup with an error ${scheme} ${width}px`, vs));
      await ctx.close();
    }
  }
  assert.equal(found.join('\n'), '', 'axe-core violations');
});

/**
 * The demo client's dashboard (with the GUI's extras unless gui is false) in a fresh browser page,
 * once its tunnel cards show.
 */
async function openDemo(
  t: TestContext,
  context: Parameters<TestBrowser['context']>[0] = {},
  { gui = true }: { gui?: boolean } = {},
) {
  const client = demoClient();
  const dash = await startDashboard({
    state: client,
    tunnels: client,
    ...(gui ? { extra: () => ({ gui: demoGui() }) } : {}),
  });
  t.after(() => dash.close());
  const b = await launchBrowser();
  t.after(() => b.close());
  const page = await (await b.context(context)).newPage();
  await page.goto(dash.loginUrl);
  await page.locator('[data-tunnel="web"]').waitFor({ timeout: UI });
  return { client, page };
}

/** The focused element's id, role and name. */
const focused = (page: Page) =>
  page.evaluate(() => {
    const el = (
      globalThis as unknown as {
        document: { activeElement: { id: string; getAttribute(n: string): string | null } | null };
      }
    ).document.activeElement;
    return { id: el?.id ?? '', selected: el?.getAttribute('aria-selected') ?? null };
  });

test('keyboard: the tabs follow the tab pattern; field errors are announced and focused; switches are named', {
  timeout: 120_000,
}, async (t) => {
  const { page } = await openDemo(t);

  // One tab stop; arrows move and select; Home/End jump; each tab controls a labelled panel.
  await page.getByRole('tab', { name: /^Tunnels/ }).focus();
  assert.deepEqual(await page.locator('[role="tab"][tabindex="0"]').count(), 1);
  await page.keyboard.press('ArrowRight');
  assert.deepEqual(await focused(page), { id: 'tab-events', selected: 'true' });
  await page.locator('#panel-events[role="tabpanel"][aria-labelledby="tab-events"]').waitFor({ timeout: UI });
  await page.keyboard.press('End');
  assert.deepEqual(await focused(page), { id: 'tab-settings', selected: 'true' });
  await page.keyboard.press('ArrowRight');
  assert.deepEqual(await focused(page), { id: 'tab-tunnels', selected: 'true' });
  await page.keyboard.press('ArrowLeft');
  assert.equal((await focused(page)).id, 'tab-settings');
  await page.keyboard.press('Home');
  assert.equal((await focused(page)).id, 'tab-tunnels');
  assert.equal(await page.locator('#tab-tunnels').getAttribute('aria-controls'), 'panel-tunnels');

  // Each switch is named by its tunnel.
  for (const name of ['web', 'postgres', 'grafana']) {
    await page.getByRole('switch', { name: `${name} Enabled`, exact: true }).waitFor({ timeout: UI });
  }
  assert.equal(await page.getByRole('switch', { name: 'grafana Enabled' }).isChecked(), false);

  // A wrong field: the summary is a live region, the first bad field gets the focus, and its message
  // is in a live region the field points to.
  await page.getByRole('button', { name: '+ Add tunnel' }).click();
  await page.getByLabel('Name').fill('web2');
  await page.getByLabel('Public port (on the server)').fill('2222');
  await page.getByLabel('Local host').fill('999.999.1.1');
  await page.getByLabel('Local port').fill('80');
  await page.getByRole('button', { name: 'Add tunnel', exact: true }).click();
  await page.locator('[data-summary]', { hasText: '2 fields need a fix.' }).waitFor({ timeout: UI });
  assert.equal(await page.locator('[data-summary]').getAttribute('role'), 'status');
  assert.equal((await focused(page)).id, 'f-remotePort');
  const port = page.getByLabel('Public port (on the server)');
  assert.equal(await port.getAttribute('aria-invalid'), 'true');
  const describedBy = (await port.getAttribute('aria-describedby')) ?? '';
  assert.ok(describedBy.split(' ').includes('f-remotePort-error'));
  const err = page.locator('#f-remotePort-error');
  assert.equal(await err.getAttribute('aria-live'), 'polite');
  assert.equal(await err.textContent(), 'the server lets this client open only ports 8000-9000, 15000-16000');
  assert.match((await page.locator('#f-localHost-error').textContent()) ?? '', /is not an IPv4 address/);
});

test('narrow screens: nothing is wider than 320 px in any state; IPv6 targets show in brackets', {
  timeout: 120_000,
}, async (t) => {
  const { client, page } = await openDemo(t, { width: 320, height: 640 });
  const width = () =>
    page.evaluate(
      () =>
        (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document
          .documentElement.scrollWidth,
    );
  assert.equal(
    await page.locator('[data-tunnel="grafana"] [data-field="local"]').textContent(),
    '[::1]:3001',
  );
  await page.locator('[data-tunnel="web"] details summary').click();
  assert.ok((await width()) <= 320, `tunnels: ${await width()} px`);
  client.setConnection({
    kind: 'rejected',
    reason: 'unknown_key',
    message: 'key not allowed',
    nextTryAt: Date.now() + 9000,
  });
  await page.locator('[data-keyline]').waitFor({ timeout: UI });
  assert.ok((await width()) <= 320, `rejected banner with the key line: ${await width()} px`);
  client.setConnection({
    kind: 'connected',
    serverFingerprint: 'SHA256:q1Xv0dXU4mYzL3oM9bJ2cC8pWk7nRtE5sAfGhJkLmNo',
    since: Date.now(),
  });
  await page.locator('[data-connection="connected"]').waitFor({ timeout: UI });
  assert.ok((await width()) <= 320, `connected banner: ${await width()} px`);
  await page.getByRole('button', { name: '+ Add tunnel' }).click();
  await page.locator('details.more').evaluate((d) => ((d as unknown as { open: boolean }).open = true));
  assert.ok((await width()) <= 320, `add dialog: ${await width()} px`);
  await page.keyboard.press('Escape');
  for (const tab of [/^Events/, /^Identity/, /^Settings/]) {
    await page.getByRole('tab', { name: tab }).click();
    assert.ok((await width()) <= 320, `${tab}: ${await width()} px`);
  }
  // Each card fits: none is cut off on the right.
  await page.getByRole('tab', { name: /^Tunnels/ }).click();
  for (const name of ['web', 'postgres', 'ssh-nas', 'grafana']) {
    const box = await page.locator(`[data-tunnel="${name}"]`).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 320, `${name}: ${JSON.stringify(box)}`);
  }
});

test('forced-colors mode keeps the switches and the status marks visible', { timeout: 60_000 }, async (t) => {
  const { page } = await openDemo(t, { forcedColors: true }, { gui: false });
  const slider = page.locator('[data-tunnel="web"] .slider');
  const style = await slider.evaluate((el) => {
    const g = globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> };
    const s = g.getComputedStyle(el);
    return { border: s.borderTopStyle, width: s.borderTopWidth };
  });
  assert.equal(style.border, 'solid', 'the switch track has an outline in forced colors');
  const box = await slider.boundingBox();
  assert.ok(box && box.width >= 30 && box.height >= 16);
  // The knob's side differs between on and off, so the state shows without colour.
  const knob = (tunnel: string) =>
    page.locator(`[data-tunnel="${tunnel}"] .slider`).evaluate((el) => {
      const g = globalThis as unknown as { getComputedStyle(e: unknown, p: string): Record<string, string> };
      return g.getComputedStyle(el, '::after').transform;
    });
  assert.notEqual(await knob('web'), await knob('grafana'));
  assert.equal(await page.locator('[data-tunnel="ssh-nas"] .pill-symbol').textContent(), '!');
});

test('settings: a value typed before the view has finished mounting is kept (the field error shows)', {
  timeout: 60_000,
}, async (t) => {
  const { page } = await openDemo(t);
  // Hold the page's timers: Preact runs effects after paint, from a timer, so the view is mounted
  // but its effects have not run when the value is typed, as on a busy machine.
  await page.clock.install();
  await page.clock.pauseAt(Date.now() + 60_000);
  await page.getByRole('tab', { name: /^Settings/ }).click();
  await page.getByLabel('Heartbeat interval (seconds)').fill('0');
  await page.clock.runFor(1000);
  await page.clock.resume();
  assert.equal(await page.getByLabel('Heartbeat interval (seconds)').inputValue(), '0');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page
    .locator('.field-error[data-field="heartbeatSeconds"]', { hasText: /at least/ })
    .waitFor({ timeout: UI });
});

test('settings: a change from outside shows while nothing is typed, and never replaces what is', {
  timeout: 60_000,
}, async (t) => {
  const client = demoClient();
  const gui = demoGui();
  const dash = await startDashboard({ state: client, tunnels: client, extra: () => ({ gui }) });
  t.after(() => dash.close());
  const b = await launchBrowser();
  t.after(() => b.close());
  const page = await (await b.context()).newPage();
  await page.goto(dash.loginUrl);
  await page.getByRole('tab', { name: /^Settings/ }).click();
  const heartbeat = page.getByLabel('Heartbeat interval (seconds)');
  const longest = page.getByLabel('Longest reconnect wait (seconds)');
  assert.equal(await heartbeat.inputValue(), '30');
  // The config file edited by hand: the dashboard's next update carries the new value.
  gui.settings = { ...gui.settings, heartbeatSeconds: 45 };
  client.setConnection({ ...client.connection });
  await page.waitForFunction(
    () =>
      (
        globalThis as unknown as { document: { getElementById(id: string): { value: string } | null } }
      ).document.getElementById('s-heartbeatSeconds')?.value === '45',
    undefined,
    { timeout: UI },
  );
  // Now the user types; a later outside change does not take the typing away. The same update turns
  // notifications off, which shows when it has arrived.
  await longest.fill('7');
  gui.settings = { ...gui.settings, heartbeatSeconds: 50 };
  gui.preferences = { ...gui.preferences, notifications: false };
  client.setConnection({ ...client.connection });
  await page
    .getByRole('switch', { name: 'Desktop notifications' })
    .and(page.locator('[aria-checked="false"]'))
    .waitFor({ timeout: UI });
  assert.equal(await longest.inputValue(), '7');
  assert.equal(await heartbeat.inputValue(), '45');
});
