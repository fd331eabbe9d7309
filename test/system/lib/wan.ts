/**
 * An emulated WAN between two network namespaces, for the benchmark's WAN profile and for system
 * tests that want delay or loss. This kernel has no netem, so delay and loss come from our own small
 * program (wan-emulator.c, compiled with gcc when a Wan is made):
 *
 * ```
 *   left 10.77.1.2 ──veth── 10.77.1.1  router  10.77.2.1 ──veth── 10.77.2.2 right
 *                                        │ tun
 *                                   wan-emulator
 * ```
 *
 * In the router, policy routing (`ip rule iif <veth> lookup 100`, table 100: default dev tun) sends
 * every packet that arrives from either veth into a TUN device; the emulator holds it for half the
 * RTT (drops a seeded-random fraction for loss) and writes it back; the kernel then forwards it out
 * of the other veth through the main table (rp_filter off). tbf on the router's two veths sets the
 * rate of each direction and its queue is the bottleneck buffer. The congestion control of every TCP
 * connection that crosses is set on the end hosts' routes (`ip route … congctl cubic`), which
 * overrides the namespace default (BBR here, and not changeable in a child namespace) for every
 * socket, whatever program opened it. All links use the same MTU (default 9000). The end hosts'
 * TCP buffer limits (tcp_rmem/tcp_wmem) are raised to 64 MiB so one connection can fill the link,
 * and receive buffers start at 1 MiB (see create() for why).
 * The emulator runs SCHED_FIFO when it may, so a busy machine delays its packets less.
 *
 * ```ts
 * requireWanTools();
 * const wan = await Wan.create(lab, { left: 'public', right: 'lan' });
 * await wan.apply({ rttMs: 50, lossPct: 0.5, rateMbit: 1000, cc: 'cubic' });
 * const rtt = await wan.ping(20);          // { avgMs, minMs, maxMs, mdevMs, lossPct }
 * const s = await wan.stats();             // the emulator's counters
 * ```
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Proc } from '../../../bench/lib/procs.js';
import { findProgram, type Link, type NetLab, type Netns, requireNetTools } from './netns.js';

/** The emulator's C source (in the source tree; dist has no copy). */
export const EMULATOR_SOURCE = fileURLToPath(
  new URL('../../../../test/system/lib/wan-emulator.c', import.meta.url),
);

/** What the link does; both directions get the same delay, loss, rate and queue. */
export interface WanSetting {
  /** Round-trip time added (each direction gets half). */
  rttMs: number;
  /** Random loss of each packet, in each direction, percent. */
  lossPct: number;
  /** tbf rate of each direction. */
  rateMbit: number;
  /** Congestion control of every TCP connection across the WAN. */
  cc: 'cubic' | 'bbr' | 'reno';
  /** PRNG seed for the loss (default 1). */
  seed?: number;
  /** tbf queue (the bottleneck buffer) in ms at the rate; default half the RTT, at least 5 ms. */
  queueMs?: number;
}

/** The emulator's counters since it started (it restarts when delay, loss or seed change). */
export interface EmulatorStats {
  seq: number;
  pkts_in: number;
  bytes_in: number;
  pkts_out: number;
  lost: number;
  overflow: number;
  write_errors: number;
  max_queue_bytes: number;
  late_max_us: number;
  late_avg_us: number;
}

/** What `ping` says. */
export interface PingResult {
  minMs: number;
  avgMs: number;
  maxMs: number;
  mdevMs: number;
  lossPct: number;
  sent: number;
}

/** Throws unless ip/tc/nft, gcc and ping are installed (the message is the apt-get line). */
export function requireWanTools(): void {
  requireNetTools({ gcc: 'gcc', ping: 'iputils-ping' });
}

const TUN = 'wan0';
const TABLE = '100';

/** The emulated WAN: `left` and `right` talk through `router`. */
export class Wan {
  readonly left: Netns;
  readonly router: Netns;
  readonly right: Netns;
  /** The address of `left` (and of `right`) as the other side reaches it. */
  readonly leftAddr = '10.77.1.2';
  readonly rightAddr = '10.77.2.2';
  /** The setting in force, after apply(). */
  setting: WanSetting | undefined;
  readonly #binary: string;
  readonly #toLeft: Link;
  readonly #toRight: Link;
  readonly #mtu: number;
  #emulator: Proc | undefined;
  #realtime: boolean | undefined;
  #emuKey = '';
  #statsSeq = 0;

  private constructor(
    parts: { left: Netns; router: Netns; right: Netns; toLeft: Link; toRight: Link },
    binary: string,
    mtu: number,
  ) {
    this.left = parts.left;
    this.router = parts.router;
    this.right = parts.right;
    this.#toLeft = parts.toLeft;
    this.#toRight = parts.toRight;
    this.#binary = binary;
    this.#mtu = mtu;
  }

  /** Compiles the emulator and builds the three namespaces; call apply() before use. */
  static async create(
    lab: NetLab,
    opts: { left?: string; right?: string; mtu?: number; socketBufferMiB?: number } = {},
  ): Promise<Wan> {
    requireWanTools();
    const mtu = opts.mtu ?? 9000;
    const binary = compileEmulator(lab.dir);
    const left = await lab.namespace(opts.left ?? 'left');
    const router = await lab.namespace('router');
    const right = await lab.namespace(opts.right ?? 'right');
    const toLeft = await lab.link(router, left, { a: '10.77.1.1/24', b: '10.77.1.2/24', mtu });
    const toRight = await lab.link(router, right, { a: '10.77.2.1/24', b: '10.77.2.2/24', mtu });
    await router.sysctl('net.ipv4.ip_forward', '1');
    // Packets come back from the TUN device with the far side's source address: no reverse-path check.
    for (const dev of ['all', 'default', toLeft.a.ifname, toRight.a.ifname]) {
      await router.sysctl(`net.ipv4.conf.${dev}.rp_filter`, '0');
    }
    await router.run('ip', ['tuntap', 'add', 'dev', TUN, 'mode', 'tun']);
    await router.sysctl(`net.ipv4.conf.${TUN}.rp_filter`, '0');
    await router.run('ip', ['link', 'set', TUN, 'mtu', String(mtu), 'up']);
    await router.run('ip', ['route', 'add', 'default', 'dev', TUN, 'table', TABLE]);
    for (const [i, dev] of [toLeft.a.ifname, toRight.a.ifname].entries()) {
      await router.run('ip', ['rule', 'add', 'iif', dev, 'lookup', TABLE, 'pref', String(100 + i)]);
    }
    // Debian's 4 MiB send-buffer limit would cap one TCP connection at about 650 Mbit/s at 50 ms and
    // 320 at 100 ms; the end hosts get room for 1 Gbit/s × 100 ms (12.5 MB) so the link is the limit.
    // With the default 128 KiB initial receive buffer, about a third of new connections on this
    // kernel never started receive-buffer autotuning and stayed at one ~84 KB window per RTT for
    // seconds (either direction, MTU 9000 or 1500); starting at 1 MiB, none did (0 of 12 against 7).
    const maxBuf = String((opts.socketBufferMiB ?? 64) * 1024 * 1024);
    for (const ns of [left, right]) {
      await ns.sysctl('net.ipv4.tcp_rmem', `4096 1048576 ${maxBuf}`);
      await ns.sysctl('net.ipv4.tcp_wmem', `4096 16384 ${maxBuf}`);
    }
    return new Wan({ left, router, right, toLeft, toRight }, binary, mtu);
  }

  /** The emulator's pid, for its CPU time. */
  get emulatorPid(): number | undefined {
    return this.#emulator && !this.#emulator.exit ? this.#emulator.pid : undefined;
  }

  /** Sets delay, loss, rate, queue and congestion control; restarts the emulator when needed. */
  async apply(s: WanSetting): Promise<void> {
    if (!(s.rttMs >= 0) || !(s.lossPct >= 0 && s.lossPct <= 100) || !(s.rateMbit > 0)) {
      throw new Error(`bad WAN setting ${JSON.stringify(s)}`);
    }
    const delayUs = Math.round((s.rttMs * 1000) / 2);
    const lossPpm = Math.round(s.lossPct * 10_000);
    const seed = s.seed ?? 1;
    const key = `${delayUs}/${lossPpm}/${seed}`;
    if (key !== this.#emuKey || !this.emulatorPid) {
      await this.#emulator?.stop(2000);
      const emu = this.router.spawn('wan-emulator', this.#binary, [
        '--dev',
        TUN,
        '--delay-us',
        String(delayUs),
        '--loss-ppm',
        String(lossPpm),
        '--seed',
        String(seed),
      ]);
      const ready = await emu.waitForLine((l) => l.startsWith('{"ready"'), 5000, 'wan-emulator');
      this.#realtime = (JSON.parse(ready) as { realtime?: boolean }).realtime;
      this.#emulator = emu;
      this.#emuKey = key;
      this.#statsSeq = 0;
    }
    const queueMs = s.queueMs ?? Math.max(5, s.rttMs / 2);
    // Each direction's bottleneck is the router's veth towards the receiver.
    await this.#toLeft.a.rate({ mbit: s.rateMbit, queueMs });
    await this.#toRight.a.rate({ mbit: s.rateMbit, queueMs });
    const across = [
      [this.left, '10.77.2.0/24', '10.77.1.1', this.#toLeft.b.ifname],
      [this.right, '10.77.1.0/24', '10.77.2.1', this.#toRight.b.ifname],
    ] as const;
    for (const [ns, dest, via, dev] of across) {
      await ns.run('ip', ['route', 'replace', dest, 'via', via, 'dev', dev, 'congctl', s.cc]);
    }
    this.setting = { ...s, seed, queueMs };
  }

  /** The emulator's counters right now (it prints them on SIGUSR1). */
  async stats(): Promise<EmulatorStats> {
    const emu = this.#emulator;
    if (!emu || emu.exit) throw new Error('the WAN emulator is not running (apply() first)');
    const after = this.#statsSeq;
    emu.signal('SIGUSR1');
    const line = await emu.waitForLine(
      (l) => l.startsWith('{"stats"') && (JSON.parse(l) as { stats: EmulatorStats }).stats.seq > after,
      5000,
      'wan-emulator stats',
    );
    const stats = (JSON.parse(line) as { stats: EmulatorStats }).stats;
    this.#statsSeq = stats.seq;
    return stats;
  }

  /** `ping` from left to right: `count` echo requests 200 ms apart. */
  async ping(count = 10, payload = 56): Promise<PingResult> {
    const r = await this.left.run(
      'ping',
      ['-n', '-q', '-c', String(count), '-i', '0.2', '-s', String(payload), '-W', '5', this.rightAddr],
      { timeoutMs: count * 200 + 15_000, allowFail: true },
    );
    const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
    const loss = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
    if (!rtt || !loss) throw new Error(`ping printed no round-trip times: ${(r.stdout + r.stderr).trim()}`);
    const sent = Number(loss[1]);
    return {
      minMs: Number(rtt[1]),
      avgMs: Number(rtt[2]),
      maxMs: Number(rtt[3]),
      mdevMs: Number(rtt[4]),
      lossPct: sent ? (100 * (sent - Number(loss[2]))) / sent : 100,
      sent,
    };
  }

  /** Whether the emulator got real-time (SCHED_FIFO) scheduling; undefined before apply(). */
  get emulatorRealtime(): boolean | undefined {
    return this.#realtime;
  }

  /** The MTU of every link. */
  get mtu(): number {
    return this.#mtu;
  }
}

/** Compiles the emulator into `dir` (fails loudly with gcc's output). */
function compileEmulator(dir: string): string {
  if (!existsSync(EMULATOR_SOURCE)) throw new Error(`the emulator source is missing: ${EMULATOR_SOURCE}`);
  const out = path.join(dir, 'wan-emulator');
  if (existsSync(out)) return out;
  const gcc = findProgram('gcc') ?? 'gcc';
  try {
    execFileSync(gcc, ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, EMULATOR_SOURCE], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`compiling ${EMULATOR_SOURCE} with gcc failed: ${(e.stderr ?? e.message).trim()}`);
  }
  return out;
}
