/**
 * The fuzzer tells its own bugs from mtt's: a JavaScript bug raised in the campaign's code is a
 * harness error (reported apart, the run still fails with exit 3), one raised in src/ stays a crash
 * finding. And the case that once reported the harness's own RangeError as a crash in mtt (session
 * case 96 of seed 3545218610: a random choice inside seedMessage's filter emptied the pool) runs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isHarnessBug, OracleError, projectFrames } from '../../fuzz/lib/outcome.js';
import { Rng } from '../../fuzz/lib/rng.js';
import { findingOf } from '../../fuzz/lib/runner.js';
import { seedMessage } from '../../fuzz/lib/seeds.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { FrameEncoder } from '../../src/protocol/frame-codec.js';

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

test('a RangeError raised in the fuzzer is a harness error, not a crash in mtt', () => {
  const err = thrown(() => new Rng(1).pick([]));
  assert.ok(err instanceof RangeError);
  assert.equal(projectFrames(err.stack ?? '')[0]?.replace(/:\d+$/, ''), 'fuzz/lib/rng.js');
  assert.equal(isHarnessBug(err), true);
  const f = findingOf('live-session', 1, 96, null, err);
  assert.equal(f.kind, 'harness');
  assert.match(f.signature, /^harness RangeError pick from an empty list @ fuzz\/lib\/rng\.js:\d+$/);
  // Node's own TypeError, raised on the campaign's behalf, is the campaign's too.
  assert.equal(
    findingOf(
      'x',
      1,
      0,
      null,
      thrown(() => Buffer.concat(null as never)),
    ).kind,
    'harness',
  );
});

test('a RangeError raised in src/ stays a crash, also under a coded wrapper or with no frame of ours', () => {
  const src = thrown(() => new FrameEncoder().setKeys({ key: Buffer.alloc(1), nonceBase: Buffer.alloc(4) }));
  assert.ok(src instanceof RangeError);
  assert.equal(projectFrames(src.stack ?? '')[0]?.replace(/:\d+$/, ''), 'src/protocol/frame-codec.js');
  assert.equal(findingOf('frames-keyed', 1, 0, null, src).kind, 'crash');
  const wrapped = new ProtocolError('ERR_MALFORMED', 'bad frame', { cause: src });
  assert.equal(findingOf('frames-keyed', 1, 0, null, wrapped).kind, 'crash');
  // Only Node's frames (an error from a socket callback): not clearly ours, so a finding.
  const bare = new TypeError('odd');
  bare.stack = 'TypeError: odd\n    at Socket.emit (node:events:519:28)\n    at node:net:343:12';
  assert.equal(findingOf('live-server', 1, 0, null, bare).kind, 'crash');
  // A broken property is always a finding, wherever the check sits.
  assert.equal(findingOf('lz4', 1, 0, null, new OracleError('differs')).kind, 'oracle');
  assert.equal(isHarnessBug(new OracleError('differs')), false);
});

test('seedMessage takes a list of types: only those come out, and an empty choice fails at once', () => {
  const types = ['OpenTunnel', 'Heartbeat'] as const;
  for (let i = 0; i < 500; i++) {
    const m = seedMessage(Rng.forCase(3545218610, 'harness-test', i), types);
    assert.ok((types as readonly string[]).includes(m.type), m.type);
  }
  const err = thrown(() => seedMessage(new Rng(2), []));
  assert.ok(err instanceof RangeError && isHarnessBug(err), String(err));
});

test('session case 96 of seed 3545218610 runs against a real session server', {
  timeout: 60_000,
}, async () => {
  const run = fileURLToPath(new URL('../../fuzz/run.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [run, '--target', 'live-session', '--seed', '3545218610', '--case', '96'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, out);
  assert.match(out, /^session case 96 \(seed 3545218610\): login session;/m);
  assert.match(out, /channels left open after the session: 0; server up/);
});
