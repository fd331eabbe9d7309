/** The WAN emulator (test/system/lib/wan.ts and wan-emulator.c) against the real kernel. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { NetLab } from './lib/netns.js';
import { Wan } from './lib/wan.js';

test('the emulated WAN delays, drops with its seed, limits the rate and sets the congestion control', async (t) => {
  const lab = await NetLab.forTest(t);
  const wan = await Wan.create(lab, { left: 'wl', right: 'wr' });
  await wan.apply({ rttMs: 20, lossPct: 0, rateMbit: 100, cc: 'cubic' });
  const quiet = await wan.ping(5);
  assert.equal(quiet.lossPct, 0);
  // Only a lower bound: the emulator may be late on a busy machine, never early.
  assert.ok(quiet.minMs >= 20, `ping ${quiet.minMs} ms through a 20 ms RTT`);
  const routes = await wan.left.run('ip', ['route', 'show', '10.77.2.0/24']);
  assert.match(routes.stdout, /via 10\.77\.1\.1 .*congctl cubic/);
  const qdiscs = await wan.router.run('tc', ['qdisc', 'show']);
  assert.equal([...qdiscs.stdout.matchAll(/tbf .*rate 100Mbit/g)].length, 2, qdiscs.stdout);
  assert.match((await wan.router.run('ip', ['rule'])).stdout, /iif to-wl lookup 100/);

  // 20 % loss each way: about a third of the pings come back; the emulator counts every drop.
  await wan.apply({ rttMs: 2, lossPct: 20, rateMbit: 100, cc: 'bbr', seed: 7 });
  assert.match((await wan.right.run('ip', ['route', 'show', '10.77.1.0/24'])).stdout, /congctl bbr/);
  const flood = await wan.left.run(
    'ping',
    ['-n', '-q', '-c', '300', '-i', '0.005', '-W', '1', wan.rightAddr],
    {
      allowFail: true,
      timeoutMs: 30_000,
    },
  );
  const got = /(\d+) packets transmitted, (\d+) received/.exec(flood.stdout);
  assert.ok(got, flood.stdout);
  const s = await wan.stats();
  // In: the 300 requests, then one reply per request that survived. Out: those, and the replies that survived.
  const survived = s.pkts_in - 300;
  assert.ok(survived > 0 && survived < 300, `${s.pkts_in} packets in`);
  // (Give or take a stray packet or two that crosses at the same time.)
  const expected = s.pkts_out - survived;
  assert.ok(
    Math.abs(Number(got[2]) - expected) <= 2,
    `ping received ${got[2]}, the emulator passed ${expected}`,
  );
  assert.equal(s.pkts_out + s.lost + s.overflow, s.pkts_in, 'every packet is written back or counted');
  const share = s.lost / s.pkts_in;
  assert.ok(share > 0.12 && share < 0.28, `lost ${s.lost} of ${s.pkts_in}`);
  assert.equal(s.write_errors, 0);
  // The same setting again keeps the emulator (and its counters); a new seed restarts it.
  await wan.apply({ rttMs: 2, lossPct: 20, rateMbit: 100, cc: 'bbr', seed: 7 });
  assert.ok((await wan.stats()).pkts_in >= s.pkts_in, 'the same emulator kept counting');
  await wan.apply({ rttMs: 2, lossPct: 20, rateMbit: 100, cc: 'bbr', seed: 8 });
  assert.ok((await wan.stats()).pkts_in < 10, 'a new emulator counts from zero');
  assert.equal(typeof wan.emulatorRealtime, 'boolean');

  const names = lab.namespaces.map((n) => n.name);
  await lab.close();
  for (const n of names) assert.ok(!existsSync(`/run/netns/${n}`), `${n} removed`);
});
