/**
 * `mtt_frame_errors_total{reason}` is one definition (registerFrameErrors in src/util/prometheus.ts)
 * that the server and the client both expose: the same help, type and samples, read from the
 * process-wide counts at each scrape.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientMetrics } from '../../src/client/metrics.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { Metrics } from '../../src/server/metrics.js';
import { countFrameError } from '../../src/transport/frame-errors.js';
import { sample } from '../e2e/scrape.js';

/** The lines of an exposition that belong to mtt_frame_errors_total. */
function frameErrorLines(text: string): string[] {
  return text.split('\n').filter((l) => /^(# (HELP|TYPE) )?mtt_frame_errors_total[ {]/.test(l));
}

test('server and client expose mtt_frame_errors_total alike, counted at each scrape', async () => {
  const server = new Metrics();
  const client = await ClientMetrics.create();
  const series = 'mtt_frame_errors_total{reason="decrypt"}';
  const before = sample(await server.prometheus(), series) ?? 0;
  countFrameError(new ProtocolError('ERR_DECRYPT', 'test'));
  countFrameError(new ProtocolError('ERR_DECRYPT', 'test'));
  const serverText = await server.prometheus();
  const clientText = await client.metrics();
  assert.equal(sample(serverText, series), before + 2);
  assert.deepEqual(frameErrorLines(clientText), frameErrorLines(serverText));
  assert.ok(frameErrorLines(serverText).includes('# TYPE mtt_frame_errors_total counter'));
  assert.ok(
    frameErrorLines(serverText).some((l) => l.startsWith('# HELP mtt_frame_errors_total Connections closed')),
  );
});
