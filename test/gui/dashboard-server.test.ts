import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TunnelManager } from '../../src/client/tunnel-manager.js';
import { type Dashboard, startDashboard } from '../../src/gui/dashboard/index.js';
import type { DashboardUpdate } from '../../src/gui/dashboard-types.js';
import { FakeClient } from './fake-client.js';
import { rawRequest, SseReader } from './http-helpers.js';

describe('dashboard server: token, Host and origin checks', () => {
  let fake: FakeClient;
  let dash: Dashboard;
  let webRoot: string;
  let cookie: string;

  before(async () => {
    webRoot = await mkdtemp(join(tmpdir(), 'mtt-web-'));
    await mkdir(join(webRoot, 'assets'));
    await writeFile(join(webRoot, 'index.html'), '<!doctype html><title>MiniTCPTunnel</title>');
    await writeFile(join(webRoot, 'assets', 'app.js'), 'export {};');
    await writeFile(join(webRoot, '..', 'secret.txt'), 'do not serve');
    fake = new FakeClient();
    fake.add({ name: 'web', remotePort: 8080, localHost: '127.0.0.1', localPort: 3000 });
    dash = await startDashboard({ state: fake, tunnels: fake, webRoot, sampleMs: 50 });
    const token = new URL(dash.loginUrl).searchParams.get('token')!;
    cookie = `${dash.cookieName}=${token}`;
  });

  after(async () => {
    await dash.close();
    await rm(webRoot, { recursive: true, force: true });
    await rm(join(webRoot, '..', 'secret.txt'), { force: true });
  });

  test('listens on 127.0.0.1 with a long random token in the login URL', () => {
    const u = new URL(dash.loginUrl);
    assert.equal(u.hostname, '127.0.0.1');
    assert.equal(Number(u.port), dash.port);
    assert.ok((u.searchParams.get('token') ?? '').length >= 40);
  });

  test('without the token every path answers 401', async () => {
    for (const path of ['/', '/api/state', '/api/events', '/assets/app.js', '/api/tunnels']) {
      const res = await rawRequest(dash.port, { path });
      assert.equal(res.status, 401, path);
    }
    const wrong = await rawRequest(dash.port, { path: '/?token=nottheone' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['set-cookie'], undefined);
    const wrongCookie = await rawRequest(dash.port, {
      path: '/',
      headers: { Cookie: `${dash.cookieName}=x` },
    });
    assert.equal(wrongCookie.status, 401);
  });

  test('the login URL sets an HttpOnly SameSite=Strict cookie and redirects to a clean URL', async () => {
    const path = new URL(dash.loginUrl).pathname + new URL(dash.loginUrl).search;
    const res = await rawRequest(dash.port, { path });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, '/');
    const set = res.headers['set-cookie']?.[0] ?? '';
    assert.ok(set.startsWith(`${cookie};`), set);
    assert.match(set, /; HttpOnly/);
    assert.match(set, /; SameSite=Strict/);
    const page = await rawRequest(dash.port, { path: '/', headers: { Cookie: cookie } });
    assert.equal(page.status, 200);
    assert.match(page.body, /MiniTCPTunnel/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    const bearer = await rawRequest(dash.port, {
      path: '/api/state',
      headers: { Authorization: `Bearer ${cookie.split('=')[1]}` },
    });
    assert.equal(bearer.status, 200);
  });

  test('after login the redirect goes to / only, never to a path the link carried', async () => {
    const token = cookie.split('=')[1]!;
    for (const path of [
      `/.//evil.example/?token=${token}`,
      `//evil.example/?token=${token}`,
      `/%2F%2Fevil.example/?token=${token}`,
      `/\\evil.example/?token=${token}`,
      `/api/state?token=${token}&next=//evil.example`,
    ]) {
      const res = await rawRequest(dash.port, { path });
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.location, '/', path);
    }
  });

  test('a one-time login link works once, and never reveals the session token', async () => {
    const url = new URL(dash.oneTimeLoginUrl());
    const code = url.searchParams.get('token')!;
    assert.notEqual(code, cookie.split('=')[1]);
    const first = await rawRequest(dash.port, { path: url.pathname + url.search });
    assert.equal(first.status, 303);
    assert.ok((first.headers['set-cookie']?.[0] ?? '').startsWith(`${cookie};`));
    const second = await rawRequest(dash.port, { path: url.pathname + url.search });
    assert.equal(second.status, 401);
    const asCookie = await rawRequest(dash.port, {
      path: '/',
      headers: { Cookie: `${dash.cookieName}=${code}` },
    });
    assert.equal(asCookie.status, 401);
  });

  test('a foreign Host header is refused even with the token (DNS rebinding)', async () => {
    for (const host of ['evil.example', `evil.example:${dash.port}`, '127.0.0.1', `127.0.0.2:${dash.port}`]) {
      const res = await rawRequest(dash.port, {
        path: '/api/state',
        headers: { Host: host, Cookie: cookie },
      });
      assert.equal(res.status, 421, host);
    }
    const ok = await rawRequest(dash.port, {
      path: '/api/state',
      headers: { Host: `localhost:${dash.port}`, Cookie: cookie },
    });
    assert.equal(ok.status, 200);
  });

  test('a cross-origin mutating request changes nothing', async () => {
    const body = JSON.stringify({ name: 'evil', remotePort: 9000, localHost: '127.0.0.1', localPort: 22 });
    const before = fake.changes.length;
    const attempts: Record<string, string>[] = [
      { Origin: 'http://evil.example' },
      { Origin: `http://127.0.0.1:${dash.port + 1}` },
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
      { Origin: 'null' },
    ];
    for (const extra of attempts) {
      const res = await rawRequest(dash.port, {
        method: 'POST',
        path: '/api/tunnels',
        headers: { Cookie: cookie, 'Content-Type': 'application/json', ...extra },
        body,
      });
      assert.equal(res.status, 403, JSON.stringify(extra));
      const del = await rawRequest(dash.port, {
        method: 'DELETE',
        path: '/api/tunnels/web',
        headers: { Cookie: cookie, ...extra },
      });
      assert.equal(del.status, 403);
    }
    // A simple cross-site form post cannot send JSON: refused by content type.
    const form = await rawRequest(dash.port, {
      method: 'POST',
      path: '/api/tunnels',
      headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=evil',
    });
    assert.equal(form.status, 415);
    assert.equal(fake.changes.length, before);
    assert.ok(fake.views.has('web'));
    assert.ok(!fake.views.has('evil'));
  });

  test('same-origin calls add, update, toggle and remove; a bad field is named', async () => {
    const headers = {
      Cookie: cookie,
      'Content-Type': 'application/json',
      Origin: `http://127.0.0.1:${dash.port}`,
      'Sec-Fetch-Site': 'same-origin',
    };
    const add = await rawRequest(dash.port, {
      method: 'POST',
      path: '/api/tunnels',
      headers,
      body: JSON.stringify({
        name: 'db',
        remotePort: 15432,
        localHost: 'localhost',
        localPort: 5432,
        extra: 1,
      }),
    });
    assert.equal(add.status, 201, add.body);
    assert.equal(fake.views.get('db')?.localPort, 5432);

    const bad = await rawRequest(dash.port, {
      method: 'POST',
      path: '/api/tunnels',
      headers,
      body: JSON.stringify({ name: 'db2', remotePort: 70000, localHost: 'localhost', localPort: 5432 }),
    });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).field, 'remotePort');
    assert.match(JSON.parse(bad.body).error, /^public port must be from 1 to 65535$/);

    const upd = await rawRequest(dash.port, {
      method: 'PUT',
      path: '/api/tunnels/db',
      headers,
      body: JSON.stringify({ name: 'pg', remotePort: 15433, localHost: 'localhost', localPort: 5432 }),
    });
    assert.equal(upd.status, 200, upd.body);
    assert.ok(fake.views.has('pg') && !fake.views.has('db'));

    const off = await rawRequest(dash.port, {
      method: 'PUT',
      path: '/api/tunnels/pg/enabled',
      headers,
      body: JSON.stringify({ enabled: false }),
    });
    assert.equal(off.status, 200);
    assert.equal(fake.views.get('pg')?.enabled, false);

    const notBool = await rawRequest(dash.port, {
      method: 'PUT',
      path: '/api/tunnels/pg/enabled',
      headers,
      body: JSON.stringify({ enabled: 'no' }),
    });
    assert.equal(notBool.status, 400);

    const del = await rawRequest(dash.port, { method: 'DELETE', path: '/api/tunnels/pg', headers });
    assert.equal(del.status, 200);
    assert.ok(!fake.views.has('pg'));

    const huge = await rawRequest(dash.port, {
      method: 'POST',
      path: '/api/tunnels',
      headers,
      body: JSON.stringify({ name: 'x'.repeat(20_000) }),
    });
    assert.equal(huge.status, 413);
  });

  test('static files stay inside the web root', async () => {
    const ok = await rawRequest(dash.port, { path: '/assets/app.js', headers: { Cookie: cookie } });
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['content-type']), /javascript/);
    const bad = await rawRequest(dash.port, { path: '/assets/%E0%A4%A', headers: { Cookie: cookie } });
    assert.equal(bad.status, 400);
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const res = await rawRequest(dash.port, { path, headers: { Cookie: cookie } });
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(res.body, /do not serve/);
    }
  });

  test('the event stream pushes the state on connect and after every change, with rates', async () => {
    const sse = await SseReader.open(dash.port, { Cookie: cookie });
    try {
      assert.equal(sse.status, 200);
      const first = await sse.waitFor<DashboardUpdate>('state', () => true);
      assert.ok(first.snapshot.tunnels.some((t) => t.name === 'web'));
      fake.setConnection({
        kind: 'reconnecting',
        attempt: 3,
        nextTryAt: Date.now() + 4000,
        lastError: 'ECONNREFUSED',
      });
      const re = await sse.waitFor<DashboardUpdate>(
        'state',
        (u) => u.snapshot.connection.kind === 'reconnecting',
      );
      assert.equal(re.snapshot.connection.kind === 'reconnecting' && re.snapshot.connection.attempt, 3);
      fake.patch('web', { bytesIn: 10_000, bytesOut: 500, activeConnections: 1 });
      const rated = await sse.waitFor<DashboardUpdate>('state', (u) =>
        (u.rates.web?.in ?? []).some((r) => r > 0),
      );
      assert.equal(rated.snapshot.tunnels.find((t) => t.name === 'web')?.bytesIn, 10_000);
      assert.ok((rated.rates.web?.out ?? []).some((r) => r > 0));
    } finally {
      sse.close();
    }
  });
});

test("the client's TunnelManager errors reach the form with every wrong field named, as a user knows it", async () => {
  // The real TunnelManager (not the fake): its ConfigError carries its fields; nothing parses text.
  const manager = new TunnelManager([{ name: 'web', remotePort: 8080, localPort: 3000 }]);
  const fake = new FakeClient();
  const dash = await startDashboard({ state: fake, tunnels: manager, token: 'k'.repeat(43) });
  try {
    const post = (body: unknown) =>
      rawRequest(dash.port, {
        method: 'POST',
        path: '/api/tunnels',
        headers: {
          Cookie: `${dash.cookieName}=${'k'.repeat(43)}`,
          'Content-Type': 'application/json',
          'Sec-Fetch-Site': 'same-origin',
        },
        body: JSON.stringify(body),
      });
    const many = await post({ name: 'a b', remotePort: 0, localHost: '999.999.1.1', localPort: 22 });
    assert.equal(many.status, 400);
    const m = JSON.parse(many.body) as { field: string; fields: Record<string, string> };
    assert.equal(m.field, 'name');
    assert.deepEqual(Object.keys(m.fields).sort(), ['localHost', 'name', 'remotePort']);
    assert.match(m.fields.localHost!, /^local host "999\.999\.1\.1" is not an IPv4 address/);
    assert.match(m.fields.remotePort!, /^public port must be from 1 to 65535$/);
    for (const text of Object.values(m.fields)) assert.doesNotMatch(text, /remotePort|localHost|localPort/);
    const dup = await post({ name: 'web2', remotePort: 8080, localPort: 3001 });
    assert.equal(dup.status, 400);
    assert.deepEqual(JSON.parse(dup.body).fields, {
      remotePort: 'public port 8080 is already used by "web"',
    });
    const extra = await post({ name: 'web3', remotePort: 8081, localPort: 3001, rateLimit: '10 parsecs' });
    assert.equal(JSON.parse(extra.body).field, 'rateLimit');
  } finally {
    await dash.close();
  }
});

test('closing the dashboard ends open event streams and frees the port', async () => {
  const fake = new FakeClient();
  const ac = new AbortController();
  const dash = await startDashboard({ state: fake, tunnels: fake, signal: ac.signal, token: 't'.repeat(43) });
  const sse = await SseReader.open(dash.port, { Cookie: `${dash.cookieName}=${'t'.repeat(43)}` });
  await sse.waitFor('state', () => true);
  ac.abort();
  await dash.close();
  await assert.rejects(rawRequest(dash.port, { path: '/' }), /ECONNREFUSED/);
  assert.equal(fake.listenerCount('change'), 0);
  sse.close();
});
