import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noticesBetween } from '../../src/gui/notifications.js';
import { FakeClient } from './fake-client.js';

test('notices: connection lost, refused, back; tunnel refused; local service down; once per change', () => {
  const c = new FakeClient();
  c.add({ name: 'web', remotePort: 8080, localPort: 3000 });
  const s0 = c.snapshot();
  assert.deepEqual(noticesBetween(undefined, s0), []);
  c.setConnection({
    kind: 'reconnecting',
    attempt: 1,
    nextTryAt: Date.now() + 1000,
    lastError: 'reset\x1b[31m',
  });
  const s1 = c.snapshot();
  const lost = noticesBetween(s0, s1);
  assert.deepEqual(
    lost.map((n) => [n.key, n.summary]),
    [['connection', 'MiniTCPTunnel: connection lost']],
  );
  assert.doesNotMatch(lost[0]!.body, /\x1b/, 'peer text is escaped');
  c.setConnection({ kind: 'reconnecting', attempt: 2, nextTryAt: Date.now() + 2000, lastError: 'refused' });
  assert.deepEqual(noticesBetween(s1, c.snapshot()), [], 'a retry is not news');
  c.setConnection({ kind: 'rejected', reason: 'unknown_key', message: 'x', nextTryAt: Date.now() });
  const s3 = c.snapshot();
  const refused = noticesBetween(s1, s3);
  assert.equal(refused[0]?.urgency, 'critical');
  assert.match(refused[0]!.body, /allow-list/);
  assert.deepEqual(noticesBetween(s3, c.snapshot()), []);
  c.setConnection({ kind: 'connected', serverFingerprint: 'SHA256:x', since: Date.now() });
  const s4 = c.snapshot();
  assert.equal(noticesBetween(s3, s4)[0]?.summary, 'MiniTCPTunnel: connected again');
  c.patch('web', { status: 'error', error: 'port 8080 is not allowed' });
  const s5 = c.snapshot();
  assert.deepEqual(
    noticesBetween(s4, s5).map((n) => n.key),
    ['tunnel:web'],
  );
  c.patch('web', { status: 'active', local: { state: 'failing', lastError: 'ECONNREFUSED' } });
  const s6 = c.snapshot();
  const down = noticesBetween(s5, s6);
  assert.deepEqual(
    down.map((n) => n.key),
    ['local:web'],
  );
  assert.match(down[0]!.body, /127\.0\.0\.1:3000 does not answer \(ECONNREFUSED\)/);
  assert.deepEqual(noticesBetween(s6, c.snapshot()), []);
});
