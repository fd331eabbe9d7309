import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTunnel } from '../../src/config/client-config.js';
import {
  draftOf,
  draftToInput,
  emptyDraft,
  type TunnelDraft,
  validateTunnelDraft,
} from '../../src/gui/tunnel-validation.js';

const good: TunnelDraft = { ...emptyDraft(), name: 'web', remotePort: '8080', localPort: '3000' };

test('a good draft has no errors and converts to numbers', () => {
  assert.deepEqual(validateTunnelDraft(good), {});
  assert.deepEqual(draftToInput({ ...good, name: ' web ', remotePort: ' 8080 ' }), {
    name: 'web',
    remotePort: 8080,
    localHost: '127.0.0.1',
    localPort: 3000,
    enabled: true,
    compress: true,
  });
  for (const host of [
    'localhost',
    'db.lan',
    'my_service',
    '192.168.1.20',
    '::1',
    '[fe80::1]',
    'fe80::1%eth0',
    'my-host.example.com',
  ]) {
    assert.deepEqual(validateTunnelDraft({ ...good, localHost: host }), {}, host);
  }
});

test('each bad field is named with a reason in words a user knows', () => {
  const cases: [Partial<TunnelDraft>, keyof TunnelDraft, RegExp][] = [
    [{ name: '' }, 'name', /^name is required$/],
    [{ name: 'has space' }, 'name', /letters, digits/],
    [{ name: 'x'.repeat(65) }, 'name', /1-64/],
    [{ remotePort: '' }, 'remotePort', /^public port is required$/],
    [{ remotePort: '0' }, 'remotePort', /^public port must be from 1 to 65535$/],
    [{ remotePort: '70000' }, 'remotePort', /from 1 to 65535/],
    [{ remotePort: '80.5' }, 'remotePort', /whole number/],
    [{ remotePort: 'abc' }, 'remotePort', /must be a number/],
    [{ localHost: '' }, 'localHost', /^local host is required$/],
    [{ localHost: 'bad host' }, 'localHost', /host name or IP/],
    [{ localHost: '-leading.dash' }, 'localHost', /host name or IP/],
    [{ localHost: '999.999.1.1' }, 'localHost', /not an IPv4 address.*0 to 255/],
    [{ localHost: '10.0.0' }, 'localHost', /not an IPv4 address/],
    [{ localHost: '1::2::3' }, 'localHost', /not a valid IPv6/],
    [{ localHost: '[db.lan]' }, 'localHost', /not an IPv6 address in brackets/],
    [{ localPort: 'abc' }, 'localPort', /^local port must be a number/],
    [{ permitFrom: '10.0.0.0/8, 10.1.2.3/8' }, 'permitFrom', /did you mean 10\.0\.0\.0\/8/],
    [{ permitFrom: '300.1.1.1' }, 'permitFrom', /not an address or CIDR/],
    [{ maxConnections: '0' }, 'maxConnections', /^connection limit must be at least 1/],
    [{ maxConnections: '2.5' }, 'maxConnections', /whole number/],
    [{ rateLimit: 'fast' }, 'rateLimit', /e\.g\. 10MB\/s/],
    [{ rateLimit: '10 furlongs/s' }, 'rateLimit', /not a rate/],
  ];
  for (const [patch, field, re] of cases) {
    const errors = validateTunnelDraft({ ...good, ...patch });
    assert.deepEqual(Object.keys(errors), [field], JSON.stringify(patch));
    assert.match(errors[field as keyof typeof errors]!, re, JSON.stringify(patch));
    assert.doesNotMatch(
      errors[field as keyof typeof errors]!,
      /remotePort|localHost|localPort|maxConnections/,
    );
  }
  assert.match(validateTunnelDraft(good, { takenNames: ['web'] }).name!, /already exists/);
});

test("the server's advertised port ranges are checked", () => {
  const ranges = [
    { low: 8000, high: 9000 },
    { low: 15432, high: 15432 },
  ];
  assert.deepEqual(validateTunnelDraft({ ...good, remotePort: '15432' }, { allowedPorts: ranges }), {});
  assert.deepEqual(validateTunnelDraft({ ...good, remotePort: '8080' }, { allowedPorts: ranges }), {});
  assert.equal(
    validateTunnelDraft({ ...good, remotePort: '2222' }, { allowedPorts: ranges }).remotePort,
    'the server lets this client open only ports 8000-9000, 15432',
  );
});

test('a tunnel round-trips through the form with every field kept', () => {
  const entry = parseTunnel({
    name: 'pg',
    remotePort: 15432,
    localHost: '[::1]',
    localPort: 5432,
    compress: false,
    proxyProtocol: 'v2',
    permitFrom: ['203.0.113.0/24', '2001:db8::/32'],
    maxConnections: 10,
    rateLimit: '512KiB/s',
  });
  assert.equal(entry.localHost, '::1', 'stored bare so it can be dialled');
  const back = parseTunnel(draftToInput(draftOf(entry)));
  assert.deepEqual(back, entry);
  // "zstd" is kept through an edit, as are true and false.
  for (const compress of ['zstd', true, false] as const) {
    const t = parseTunnel({ name: 'logs', remotePort: 9000, localPort: 80, compress });
    assert.equal(draftOf(t).compress, compress);
    assert.deepEqual(parseTunnel(draftToInput({ ...draftOf(t), name: 'renamed' })), {
      ...t,
      name: 'renamed',
    });
  }
});
