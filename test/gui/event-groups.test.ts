import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientEvent } from '../../src/client/api.js';
import { collapseEvents } from '../../src/gui/event-groups.js';

test('repeated retries fold into one line with a count; anything in between breaks the run', () => {
  const e = (at: number, message: string, level: ClientEvent['level'] = 'warn'): ClientEvent => ({
    at,
    level,
    message,
  });
  const rows = collapseEvents([
    e(1, 'connected to a:1', 'info'),
    e(2, 'not connected: connect ECONNREFUSED 127.0.0.1:9000 (attempt 1)'),
    e(3, 'not connected: connect ECONNREFUSED 127.0.0.1:9000 (attempt 2)'),
    e(4, 'not connected: connect ECONNREFUSED 127.0.0.1:9000 (attempt 3)'),
    e(5, 'settings changed: server address', 'info'),
    e(6, 'not connected: connect ECONNREFUSED 127.0.0.1:9000 (attempt 4)'),
  ]);
  assert.deepEqual(
    rows.map((r) => [r.event.at, r.count, r.first]),
    [
      [6, 1, 6],
      [5, 1, 5],
      [4, 3, 2],
      [1, 1, 1],
    ],
  );
});
