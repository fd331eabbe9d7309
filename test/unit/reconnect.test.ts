/** The client's reconnect policy (src/client/reconnect.ts): how a failure is read and how long to wait. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoff, classifyFailure, RECONNECT_PROBE_MS, reconnectDelay } from '../../src/client/reconnect.js';
import { AuthRejectedError, ProtocolError } from '../../src/protocol/errors.js';

const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

test('backoff doubles from the minimum, stays within [ceiling/2, ceiling] and is capped', () => {
  for (let attempt = 1; attempt <= 40; attempt++) {
    const ceiling = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 30));
    for (let i = 0; i < 50; i++) {
      const d = backoff(attempt, 500, 30_000);
      assert.ok(
        d >= ceiling / 2 && d <= ceiling,
        `attempt ${attempt}: ${d} outside [${ceiling / 2}, ${ceiling}]`,
      );
    }
  }
});

test('a server not reached at all is tried again within RECONNECT_PROBE_MS, whatever the attempt', () => {
  for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']) {
    const f = classifyFailure(errno(code));
    assert.equal(f.unreachable, true, code);
    assert.equal(f.rejected, undefined, code);
    assert.ok(reconnectDelay(20, f, 500, 60_000) <= RECONNECT_PROBE_MS, code);
  }
  assert.match(classifyFailure(errno('ECONNREFUSED')).why, /is the server running\?/);
  assert.match(classifyFailure(errno('ENOTFOUND', 'getaddrinfo ENOTFOUND nowhere')).why, /host not found/);
});

test('a refused login backs off; a key in use waits about the maximum', () => {
  const busy = classifyFailure(new AuthRejectedError('busy', 'another client is connected', 2));
  assert.deepEqual(busy.rejected, { reason: 'busy', message: 'another client is connected' });
  assert.equal(busy.unreachable, false);
  assert.ok(reconnectDelay(10, busy, 500, 60_000) > RECONNECT_PROBE_MS);

  const inUse = classifyFailure(new AuthRejectedError('in_use', 'the key is in use', 2));
  for (let i = 0; i < 50; i++) {
    const d = reconnectDelay(1, inUse, 500, 60_000);
    assert.ok(d >= 54_000 && d <= 60_000, `${d}`);
  }
});

test('a server key mismatch is a refusal, named as such', () => {
  const f = classifyFailure(new ProtocolError('ERR_SERVER_KEY_MISMATCH', 'key SHA256:x is not pinned'));
  assert.deepEqual(f.rejected, { reason: 'server_key_mismatch', message: 'key SHA256:x is not pinned' });
  assert.equal(classifyFailure(new ProtocolError('ERR_MALFORMED', 'bad')).rejected, undefined);
});
