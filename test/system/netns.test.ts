/** The shared network-namespace library (test/system/lib/netns.ts) against the real kernel. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import type net from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive, sleep, withTimeout } from '../../bench/lib/procs.js';
import { NetLab, type Netns, requireNetTools } from './lib/netns.js';

const CHILD = fileURLToPath(new URL('./fixtures/lab-child.js', import.meta.url));

/** A Node TCP server inside `ns` on `port`: 'echo' pipes back, 'sink' answers "got N" after EOF. */
async function tcpServer(ns: Netns, port: number, kind: 'echo' | 'sink') {
  const body =
    kind === 'echo'
      ? 's.pipe(s)'
      : `let n = 0; s.on('data', (d) => { n += d.length; }); s.on('end', () => s.end('got ' + n));`;
  const script = `const net = require('node:net');
    net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); ${body} })
      .listen(${port}, '::', () => console.log('listening'));`;
  const proc = ns.spawn(`${kind}-server`, process.execPath, ['-e', script]);
  await proc.waitForLine((l) => l === 'listening', 10_000, `${kind} server`);
  return proc;
}

/** Writes `text` and reads until as many bytes came back (leaving the socket open). */
async function roundTrip(sock: net.Socket, text: string): Promise<string> {
  sock.write(text);
  let got = '';
  while (got.length < text.length) got += String((await once(sock, 'data'))[0]);
  return got;
}

/** The host's interface names (without the @peer part). */
function hostLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter(Boolean);
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

test('a missing tool fails loudly with the apt-get line that installs it', () => {
  requireNetTools();
  assert.throws(
    () => requireNetTools({ 'mtt-no-such-tool': 'mtt-some-package' }),
    /mtt-no-such-tool not found: install with apt-get install -y --no-install-recommends mtt-some-package/,
  );
});

test('two namespaces joined by a veth pair carry TCP, and the host sees none of it', async (t) => {
  const lab = await NetLab.forTest(t);
  const a = await lab.namespace('a');
  const b = await lab.namespace('b');
  const link = await lab.link(a, b, { a: '10.201.0.1/24', b: '10.201.0.2/24', mtu: 9000 });
  for (const name of [link.a.ifname, link.b.ifname]) {
    assert.ok(!hostLinks().includes(name), `${name} is not on the host`);
  }
  assert.match(a.name, /^mtt-\d+-[0-9a-f]{6}-a$/);
  assert.ok(readdirSync('/run/netns').includes(a.name) && readdirSync('/run/netns').includes(b.name));
  const shown = await b.run('ip', ['-o', 'addr', 'show', 'dev', link.b.ifname]);
  assert.match(shown.stdout, /inet 10\.201\.0\.2\/24/);
  assert.match((await a.run('ip', ['link', 'show', link.a.ifname])).stdout, /mtu 9000/);

  await tcpServer(b, 7001, 'echo');
  const sock = await a.connect(link.b.address, 7001);
  assert.equal(await roundTrip(sock, 'hello across namespaces'), 'hello across namespaces');
  sock.destroy();
  // The same port on a's side of the pair has nobody listening.
  await assert.rejects(a.connect(link.a.address, 7001), /ECONNREFUSED/);
  // IPv6 too.
  const l6 = await lab.link(a, b, { a: 'fd00:201::1/64', b: 'fd00:201::2/64' });
  assert.equal(l6.a.ifname, 'to-b2');
  const s6 = await a.connect('fd00:201::2', 7001);
  assert.equal(await roundTrip(s6, 'v6'), 'v6');
  s6.destroy();
});

test('run() rejects with the command and its stderr, or resolves with allowFail', async (t) => {
  const lab = await NetLab.forTest(t);
  const ns = await lab.namespace('run');
  await assert.rejects(ns.run('ip', ['link', 'show', 'nope0']), /ip link show nope0 in run failed: .*nope0/);
  const r = await ns.run('sh', ['-c', 'cat; echo err >&2; exit 3'], { allowFail: true, input: 'in' });
  assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'in', 'err\n']);
  await ns.sysctl('net.ipv4.ip_forward', '1');
  assert.equal((await ns.run('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1');
});

test('block() partitions silently in both directions and remove() heals it', async (t) => {
  const lab = await NetLab.forTest(t);
  const a = await lab.namespace('pa');
  const b = await lab.namespace('pb');
  const link = await lab.link(a, b, { a: '10.202.0.1/24', b: '10.202.0.2/24' });
  await tcpServer(b, 7002, 'echo');
  const live = await a.connect(link.b.address, 7002);
  live.on('error', () => {});
  assert.equal(await roundTrip(live, 'before'), 'before');

  const cut = await a.block({ peer: link.b.address });
  const rules = await a.run('nft', ['list', 'ruleset']);
  assert.match(rules.stdout, /ip saddr 10\.202\.0\.2 drop/);
  assert.match(rules.stdout, /ip daddr 10\.202\.0\.2 drop/);
  // A new connection gets no answer at all (dropped, not refused).
  const t0 = Date.now();
  await assert.rejects(a.connect(link.b.address, 7002, 1500), /no answer within/);
  assert.ok(Date.now() - t0 >= 1400, 'the dial waited for its timeout');
  // An established connection stalls, and carries its bytes once the partition heals.
  live.write('during');
  const echoed = once(live, 'data').then(String);
  await assert.rejects(withTimeout(echoed, 800, 'echo during the partition'), /no answer within/);
  await cut.remove();
  assert.doesNotMatch((await a.run('nft', ['list', 'ruleset'])).stdout, /drop/);
  // TCP retransmits with back-off: the next try after the heal comes within a few seconds.
  assert.equal(await withTimeout(echoed, 15_000, 'echo after the heal'), 'during');
  live.destroy();

  // Interface and one-way variants: outgoing only, on b's side.
  const outOnly = await b.block({ iface: link.b.ifname, direction: 'out' });
  const listed = (await b.run('nft', ['list', 'ruleset'])).stdout;
  assert.match(listed, new RegExp(`oifname "${link.b.ifname}" drop`));
  assert.doesNotMatch(listed, /iifname/);
  await outOnly.remove();
  await assert.rejects(a.block({}), /needs a peer or an interface/);
});

test('rate() limits one end with tbf and clearRate() removes it', async (t) => {
  const lab = await NetLab.forTest(t);
  const a = await lab.namespace('ra');
  const b = await lab.namespace('rb');
  const link = await lab.link(a, b, { a: '10.203.0.1/24', b: '10.203.0.2/24' });
  await link.a.rate({ mbit: 8 });
  assert.match((await a.run('tc', ['qdisc', 'show', 'dev', link.a.ifname])).stdout, /tbf .*rate 8Mbit/);
  await tcpServer(b, 7003, 'sink');
  const sock = await a.connect(link.b.address, 7003);
  const bytes = 1_000_000; // 1 s at 8 Mbit/s
  const t0 = Date.now();
  sock.end(Buffer.alloc(bytes, 1));
  let answer = '';
  for await (const chunk of sock) answer += String(chunk);
  const ms = Date.now() - t0;
  assert.equal(answer, `got ${bytes}`);
  // Only a lower bound (a busy machine is slower, never faster): without tbf this takes milliseconds.
  assert.ok(ms >= 700, `1 MB through 8 Mbit/s took ${ms} ms`);
  await link.a.clearRate();
  assert.doesNotMatch((await a.run('tc', ['qdisc', 'show', 'dev', link.a.ifname])).stdout, /tbf/);
});

test('close() stops every process, even one that left its process group, and removes everything', async () => {
  const lab = await NetLab.create();
  const ns = await lab.namespace('close');
  const proc = ns.spawn('talker', 'sh', ['-c', 'echo started; echo oops >&2; exec sleep 600']);
  await proc.waitForLine((l) => l === 'started', 5000, 'talker');
  await until('stderr kept', () => proc.stderr.includes('oops'), 2000);
  // A daemon: its own session, so no process group of ours holds it.
  await ns.run('sh', ['-c', 'setsid sleep 601 > /dev/null 2>&1 < /dev/null &']);
  const pids = execFileSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' })
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  assert.equal(pids.length, 2, `two processes inside: ${pids.join(' ')}`);
  const t0 = Date.now();
  await lab.close();
  assert.ok(Date.now() - t0 < 5000, 'close is bounded');
  await until('every process inside ended', () => pids.every((p) => !isAlive(p)), 3000);
  assert.ok(!existsSync(`/run/netns/${ns.name}`), 'namespace deleted');
  assert.ok(!existsSync(lab.dir), 'temp folder removed');
  await assert.rejects(lab.namespace('late'), /closed/);
});

for (const how of ['exit', 'throw', 'SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
  test(`a process that ends by ${how} leaves no namespace or process behind`, async () => {
    const child = spawn(process.execPath, [CHILD, how === 'exit' || how === 'throw' ? how : 'wait'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await until('the child made its lab', () => out.includes('\n'), 15_000);
    const made = JSON.parse(out) as { ns: string; pid: number; dir: string };
    if (how !== 'exit' && how !== 'throw') {
      assert.ok(existsSync(`/run/netns/${made.ns}`), 'the namespace exists while the child waits');
      child.kill(how);
    }
    const [code, signal] = await withTimeout(exited, 10_000, 'the child ending');
    if (how === 'exit') assert.equal(code, 0);
    if (how === 'throw') {
      assert.equal(code, 1);
      assert.match(err, /a deliberate crash/);
    }
    if (how === 'SIGTERM' || how === 'SIGINT' || how === 'SIGKILL') assert.equal(signal, how);
    if (how === 'SIGKILL') {
      // Nothing can run in a process killed so; the next lab on the machine removes what it left.
      assert.ok(existsSync(`/run/netns/${made.ns}`), 'left behind by SIGKILL');
      await (await NetLab.create()).close();
    }
    assert.ok(!existsSync(`/run/netns/${made.ns}`), 'namespace deleted');
    assert.ok(!existsSync(made.dir), 'temp folder removed');
    await until('the process inside ended', () => !isAlive(made.pid), 3000);
  });
}
