import assert from 'node:assert/strict';
import { test } from 'node:test';
import { draftToInput, type TunnelDraft, validateTunnelDraft } from '../../src/gui/tunnel-validation.js';

const good: TunnelDraft = {
  name: 'web',
  remotePort: '8080',
  localHost: '127.0.0.1',
  localPort: '3000',
  enabled: true,
};

test('a good draft has no errors and converts to numbers', () => {
  assert.deepEqual(validateTunnelDraft(good), {});
  assert.deepEqual(draftToInput({ ...good, name: ' web ', remotePort: ' 8080 ' }), {
    name: 'web',
    remotePort: 8080,
    localHost: '127.0.0.1',
    localPort: 3000,
    enabled: true,
  });
  for (const host of ['localhost', 'db.lan', '192.168.1.20', '::1', '[fe80::1]', 'my-host.example.com']) {
    assert.deepEqual(validateTunnelDraft({ ...good, localHost: host }), {}, host);
  }
});

test('each bad field is named with a reason', () => {
  const cases: [Partial<TunnelDraft>, keyof TunnelDraft, RegExp][] = [
    [{ name: '' }, 'name', /required/],
    [{ name: 'has space' }, 'name', /letters, digits/],
    [{ name: 'x'.repeat(65) }, 'name', /1-64/],
    [{ remotePort: '' }, 'remotePort', /required/],
    [{ remotePort: '0' }, 'remotePort', /between 1 and 65535/],
    [{ remotePort: '70000' }, 'remotePort', /between 1 and 65535/],
    [{ remotePort: '80.5' }, 'remotePort', /whole number/],
    [{ remotePort: '-1' }, 'remotePort', /whole number/],
    [{ localHost: '' }, 'localHost', /required/],
    [{ localHost: 'bad host' }, 'localHost', /host name or an IP/],
    [{ localHost: '-leading.dash' }, 'localHost', /host name or an IP/],
    [{ localPort: 'abc' }, 'localPort', /whole number/],
  ];
  for (const [patch, field, re] of cases) {
    const errors = validateTunnelDraft({ ...good, ...patch });
    assert.deepEqual(Object.keys(errors), [field], JSON.stringify(patch));
    assert.match(errors[field]!, re);
  }
  assert.match(validateTunnelDraft(good, ['web']).name!, /already exists/);
});
