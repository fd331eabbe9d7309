/**
 * A 90 s partition during transfers (issue 8), in network namespaces: the long one of the session
 * system tests (sessions.test.ts has the others). The transfers survive it (TCP retransmits, and no
 * deadline of ours is shorter), the server drops the silent client within 15 s, and the client is
 * usable again within 5 s after the link comes back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../../bench/lib/procs.js';
import { servedAgain, sessionsLab, waitLog } from './sessions-harness.js';

test('a 90 s partition during transfers: they complete intact; back within 5 s of the link', {
  timeout: 240_000,
}, async (t) => {
  const w = await sessionsLab(t, 'part90', { fileBytes: 4 * 1024 * 1024, paceKiBps: 256 });
  const server = await w.startServer();
  await w.startClient();
  const downloads = [w.download(200_000), w.download(200_000)];
  await sleep(2000);
  const cut = await w.partition();
  const cutAt = Date.now();
  const dropped = await waitLog(
    server,
    (l) => l.msg === 'client session ended',
    17_000,
    'the server drops the client',
  );
  assert.ok(dropped.at - cutAt <= 17_000, `dropped ${dropped.at - cutAt} ms into the partition`);
  await sleep(Math.max(0, 90_000 - (Date.now() - cutAt)));
  await cut.remove();
  const healedAt = Date.now();
  const served = await servedAgain(w, 15_000);
  assert.ok(served - healedAt <= 5000, `usable again ${served - healedAt} ms after the link came back`);
  for (const d of await Promise.all(downloads)) {
    assert.equal(d.bytes, w.file.size);
    assert.equal(d.sha256, w.file.sha256);
  }
  t.diagnostic(`dropped after ${dropped.at - cutAt} ms; back ${served - healedAt} ms after the link`);
});
