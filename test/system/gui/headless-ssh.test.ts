/**
 * The README's headless recipe, literally (issue 10): `mtt gui --no-window --dashboard-port N
 * --dashboard-host localhost:8080` on a box, `ssh -L 8080:127.0.0.1:N box` from a desktop, then the
 * printed link with port 8080. A real OpenSSH does the forwarding.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../e2e/harness.js';
import { rawRequest } from '../../gui/http-helpers.js';
import { startRealSetup } from '../../gui/real-setup.js';
import { until } from './lib/desktop.js';
import { spawnGui } from './lib/gui-process.js';
import { canConnect, startSshd } from './lib/sshd.js';

test('the dashboard through ssh -L: the forwarded address logs in and works; without --dashboard-host it is refused', {
  timeout: 90_000,
}, async (t) => {
  const setup = await startRealSetup(t, []);
  const sshd = await startSshd(t);
  const [dashPort, forwarded] = [await freePort(), await freePort()];
  const env = {
    ...process.env,
    MTT_CONFIG_DIR: setup.dir,
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
  };
  const gui = spawnGui(
    t,
    [
      '--config',
      setup.configPath,
      '--no-window',
      '--dashboard-port',
      String(dashPort),
      '--dashboard-host',
      `localhost:${forwarded}`,
    ],
    env,
  );
  const printed = new URL((await gui.waitForOutput(/Dashboard: (\S+)/))[1]!);
  assert.equal(printed.port, String(dashPort), 'the fixed port was used');

  sshd.ssh(['-L', `${forwarded}:127.0.0.1:${dashPort}`]);
  await until('ssh -L to listen', () => canConnect(forwarded), 15_000);

  // What the browser on the desktop sends for http://localhost:8080/?token=…
  const host = { Host: `localhost:${forwarded}` };
  const login = await rawRequest(forwarded, { path: printed.pathname + printed.search, headers: host });
  assert.equal(login.status, 303, login.body);
  assert.equal(login.headers.location, '/');
  const cookie = (login.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  const state = await rawRequest(forwarded, { path: '/api/state', headers: { ...host, Cookie: cookie } });
  assert.equal(state.status, 200);
  assert.equal(
    (JSON.parse(state.body) as { snapshot: { server: { address: string } } }).snapshot.server.address,
    `127.0.0.1:${setup.server.address.port}`,
  );
  // A change from the forwarded origin is same-origin, so it is accepted.
  const add = await rawRequest(forwarded, {
    method: 'POST',
    path: '/api/tunnels',
    headers: {
      ...host,
      Cookie: cookie,
      'Content-Type': 'application/json',
      Origin: `http://localhost:${forwarded}`,
    },
    body: JSON.stringify({ name: 'web', remotePort: await freePort(), localPort: setup.service.port }),
  });
  assert.equal(add.status, 201, add.body);
  // Any other name for the forwarded port is still refused (the DNS-rebinding check stays on).
  const other = await rawRequest(forwarded, {
    path: '/api/state',
    headers: { Host: `evil.example:${forwarded}`, Cookie: cookie },
  });
  assert.equal(other.status, 421);
  gui.child.kill('SIGTERM');
  assert.equal((await gui.exited(10_000))[0], 0);

  // Without the flag, the same recipe gets 421, as issue 10 found.
  const plain = spawnGui(
    t,
    ['--config', setup.configPath, '--no-window', '--dashboard-port', String(dashPort)],
    env,
  );
  const url = new URL((await plain.waitForOutput(/Dashboard: (\S+)/))[1]!);
  const refused = await rawRequest(forwarded, { path: url.pathname + url.search, headers: host });
  assert.equal(refused.status, 421);
  assert.match(refused.body, /--dashboard-host/);
  plain.child.kill('SIGTERM');
  await plain.exited(10_000);
});

test('--dashboard-port and --dashboard-host are checked', { timeout: 30_000 }, async (t) => {
  const setup = await startRealSetup(t, []);
  const env = { ...process.env, MTT_CONFIG_DIR: setup.dir };
  for (const [flag, value, re] of [
    ['--dashboard-port', '70000', /--dashboard-port must be a port from 0 to 65535/],
    ['--dashboard-host', 'http://localhost:8080/', /--dashboard-host must be HOST:PORT/],
  ] as const) {
    const gui = spawnGui(t, ['--config', setup.configPath, '--no-window', flag, value], env);
    const [code] = await gui.exited(15_000);
    assert.equal(code, 2);
    assert.match(gui.stderr(), re);
  }
});
