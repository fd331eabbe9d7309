/**
 * ControlSession and ControlSessionManager on their own: a keyed control channel over loopback whose
 * client end the test drives by hand.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { formatPublicKeyLine, generateIdentity, parseAllowList } from '../../src/identity/index.js';
import type { SessionKeys } from '../../src/protocol/handshake-machines.js';
import {
  LIVENESS_PROBE_TIMEOUT_MS,
  PROBE_RTT_FACTOR,
  PROBE_TIMEOUT_MAX_MS,
} from '../../src/protocol/limits.js';
import { AnswerTime, probeDeadlineMs } from '../../src/server/client-liveness.js';
import { ControlSession, type ServerContext } from '../../src/server/control-session.js';
import { ControlSessionManager } from '../../src/server/control-session-manager.js';
import { Metrics } from '../../src/server/metrics.js';
import type { PendingServerSession, SessionGrant } from '../../src/transport/handshake.js';
import { silentLogger } from '../../src/util/logger.js';
import { keyedChannel } from './helpers.js';

function ctx(heartbeatMs = 60_000): ServerContext {
  return {
    log: silentLogger,
    metrics: new Metrics(),
    heartbeatMs,
    bindHost: '127.0.0.1',
    displayHost: '127.0.0.1',
    serverRanges: [{ low: 1024, high: 65535 }],
    zstd: true,
  };
}

function entryFor(permit = '') {
  const id = generateIdentity('c');
  return parseAllowList(`${permit}${formatPublicKeyLine(id.publicRaw, 'c')}`, 'test')[0]!;
}

function keys(): SessionKeys {
  const k = { key: randomBytes(32), nonceBase: randomBytes(4) };
  return { send: k, receive: k, sessionId: randomBytes(16), sessionSecret: randomBytes(32) };
}

async function session(t: TestContext, c = ctx(), entry = entryFor()) {
  const ch = await keyedChannel(t);
  const ended: string[] = [];
  const s = new ControlSession({
    conn: ch.server,
    keys: keys(),
    entry,
    ctx: c,
    peer: '127.0.0.1:1',
    onClosed: () => ended.push('closed'),
  });
  s.start();
  t.after(() => s.close('test over'));
  return { s, client: ch.client, ended };
}

describe('ControlSession', () => {
  test('probe(): true as soon as the client answers, false after the deadline of silence', async (t) => {
    const { s, client } = await session(t);
    const answered = s.probe(1000);
    const hb = await client.receive(1000);
    assert.equal(hb.type === 'Heartbeat' && !hb.reply, true);
    client.send({ type: 'Heartbeat', reply: true, seq: hb.type === 'Heartbeat' ? hb.seq : 0 });
    assert.equal(await answered, true);
    const started = Date.now();
    const a = s.probe(150);
    const b = s.probe(150);
    assert.equal(a, b, 'one probe in flight at a time');
    assert.equal(await a, false);
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 1000, `false after ${took} ms`);
  });

  test("probe(): an answer waiting in the socket when the server's own loop was held past the deadline counts", async (t) => {
    const { s, client } = await session(t);
    const verdict = s.probe(50);
    const hb = await client.receive(1000);
    // The answer is in the server's socket at once (loopback); then the server's loop is held up
    // past the deadline, as on a loaded machine: its timer is due before the answer is read.
    client.send({ type: 'Heartbeat', reply: true, seq: hb.type === 'Heartbeat' ? hb.seq : 0 });
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // busy: the event loop does not turn
    }
    assert.equal(await verdict, true, 'the client answered; the late server must not call it dead');
  });

  test('the probe deadline: LIVENESS_PROBE_TIMEOUT_MS at least, a multiple of a long round trip, bounded', async (t) => {
    assert.equal(probeDeadlineMs(undefined), LIVENESS_PROBE_TIMEOUT_MS);
    assert.equal(probeDeadlineMs(1), LIVENESS_PROBE_TIMEOUT_MS);
    assert.equal(probeDeadlineMs(700), PROBE_RTT_FACTOR * 700);
    assert.equal(probeDeadlineMs(60_000), PROBE_TIMEOUT_MAX_MS);
    // The round trip is the shortest recent answer: one slow answer (a stall) does not stretch it.
    const a = new AnswerTime();
    a.sample(3);
    a.sample(1800);
    assert.equal(a.ms, 3);
    for (let i = 0; i < AnswerTime.KEEP; i++) a.sample(700 + i);
    assert.equal(a.ms, 700, 'only the last few answers count');
    // A session whose client answers late: its next probe gets a longer deadline.
    const { s, client } = await session(t);
    assert.equal(s.probeDeadlineMs(), LIVENESS_PROBE_TIMEOUT_MS);
    const answered = s.probe();
    const hb = await client.receive(1000);
    await new Promise((r) => setTimeout(r, 600));
    client.send({ type: 'Heartbeat', reply: true, seq: hb.type === 'Heartbeat' ? hb.seq : 0 });
    assert.equal(await answered, true);
    assert.ok(s.probeDeadlineMs() >= PROBE_RTT_FACTOR * 600, `deadline ${s.probeDeadlineMs()} ms`);
    assert.ok(s.probeDeadlineMs() <= PROBE_TIMEOUT_MAX_MS);
  });

  test('a client silent for three heartbeat intervals ends the session', async (t) => {
    const { s, ended } = await session(t, ctx(50));
    const started = Date.now();
    while (!s.closed) {
      assert.ok(Date.now() - started < 2000, 'still open after 2 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    const took = Date.now() - started;
    assert.ok(took >= 140, `ended after ${took} ms, before 3 x 50 ms`);
    assert.deepEqual(ended, ['closed']);
  });

  test("the client's Heartbeat is answered; AuthOk's grant is --allow-ports within permitlisten", async (t) => {
    const { s, client } = await session(t, ctx(), entryFor('permitlisten="2000-3000,8080" '));
    client.send({ type: 'Heartbeat', reply: false, seq: 41 });
    assert.deepEqual(await client.receive(1000), { type: 'Heartbeat', reply: true, seq: 41 });
    assert.deepEqual(s.grant(), {
      heartbeatMs: 60_000,
      allowedPorts: [
        { low: 2000, high: 3000 },
        { low: 8080, high: 8080 },
      ],
      maxConnections: 0,
      rateLimit: 0,
    } satisfies SessionGrant);
  });

  test('close with revoke sends a keyed AuthFail revoked, then ends the channel', async (t) => {
    const { s, client } = await session(t);
    s.close('key removed', { revoke: true });
    const msg = await client.receive(1000);
    assert.equal(msg.type === 'AuthFail' && msg.reason, 'revoked');
    await new Promise<void>((r) => client.onEnd(() => r()));
  });
});

/** A pending handshake whose answer the test reads. */
function pending(t: TestContext, k = keys()) {
  const answers: Array<{ ok: true; grant: SessionGrant } | { ok: false; reason: string; message: string }> =
    [];
  const p: PendingServerSession = {
    keys: k,
    clientKey: Buffer.alloc(32),
    accept: (grant) => answers.push({ ok: true, grant }),
    reject: (reason, message) => answers.push({ ok: false, reason, message }),
  };
  void t;
  return { p, answers };
}

describe('ControlSessionManager', () => {
  test('the same key: a session that answers keeps it (in_use, naming where and since when)', async (t) => {
    const manager = new ControlSessionManager(ctx(), { duplicateProbeMs: 500 });
    t.after(() => manager.closeAll());
    const entry = entryFor();
    const first = await keyedChannel(t);
    const a = pending(t);
    const s1 = await manager.admit(a.p, first.server, entry, '192.0.2.1:40000');
    assert.ok(s1);
    // The first client answers the probe that the second login causes.
    first.client.onMessage((m) => {
      if (m.type === 'Heartbeat' && !m.reply)
        first.client.send({ type: 'Heartbeat', reply: true, seq: m.seq });
    });
    const second = await keyedChannel(t);
    const b = pending(t);
    assert.equal(await manager.admit(b.p, second.server, entry, '192.0.2.2:40001'), undefined);
    const answer = b.answers[0]!;
    assert.equal(answer.ok, false);
    if (answer.ok) return;
    assert.equal(answer.reason, 'in_use');
    assert.match(answer.message, /in use by a live session from 192\.0\.2\.1:40000 since \d{4}-\d\d-\d\dT/);
    assert.equal(manager.current, s1);
  });

  test('the same key: a session that does not answer is replaced at once', async (t) => {
    const manager = new ControlSessionManager(ctx(), { duplicateProbeMs: 200 });
    t.after(() => manager.closeAll());
    const entry = entryFor();
    const first = await keyedChannel(t);
    const s1 = await manager.admit(pending(t).p, first.server, entry, '192.0.2.1:40000');
    const second = await keyedChannel(t);
    const started = Date.now();
    const s2 = await manager.admit(pending(t).p, second.server, entry, '192.0.2.1:40002');
    assert.ok(s2 && s1?.closed, 'replaced');
    assert.ok(Date.now() - started < 1000);
    assert.equal(manager.current, s2);
  });

  test('another key is busy; bySessionId finds only the live session', async (t) => {
    const manager = new ControlSessionManager(ctx());
    t.after(() => manager.closeAll());
    const first = await keyedChannel(t);
    const k = keys();
    const s1 = await manager.admit(pending(t, k).p, first.server, entryFor(), 'a');
    const other = await keyedChannel(t);
    const b = pending(t);
    assert.equal(await manager.admit(b.p, other.server, entryFor(), 'b'), undefined);
    assert.equal(b.answers[0]!.ok === false && b.answers[0]!.reason, 'busy');
    assert.equal(manager.bySessionId(k.sessionId), s1);
    assert.equal(manager.bySessionId(randomBytes(16)), undefined);
    s1!.close('gone');
    assert.equal(manager.bySessionId(k.sessionId), undefined);
  });

  test('allow-list changes by key: a removed key loses its session; a narrowed one its tunnels', async (t) => {
    const manager = new ControlSessionManager(ctx());
    t.after(() => manager.closeAll());
    const entry = entryFor();
    const ch = await keyedChannel(t);
    const s = await manager.admit(pending(t).p, ch.server, entry, 'a');
    manager.allowListChanged([{ ...entry, options: { permitListen: [{ low: 5000, high: 5001 }] } }]);
    assert.equal(s!.closed, false);
    assert.deepEqual(s!.grant().allowedPorts, [{ low: 5000, high: 5001 }]);
    manager.allowListChanged([]);
    assert.equal(s!.closed, true);
    const msg = await ch.client.receive(1000);
    assert.equal(msg.type === 'AuthFail' && msg.reason, 'revoked');
  });
});
