/**
 * The WAN profile's self-check, before anything is measured: for every link setting the workloads
 * use, ping's RTT must be within 2 % of the set RTT; for every lossless setting, direct iperf3 must
 * reach the set rate within 10 %, and the emulator's own CPU is read meanwhile. After the runs, the
 * loss the emulator really applied is added from its counters.
 */
import type { EmulatorStats, PingResult, WanSetting } from '../../test/system/lib/wan.js';
import { iperfIdle, openConnStates } from '../workloads/bulk.js';
import type { Options } from './options.js';
import { readCpuSeconds, type Scope, withTimeout } from './procs.js';
import { fmtNum } from './report.js';
import type { ToolPaths } from './tools.js';
import type { Topology } from './topology.js';

/** Allowed error of the ping RTT against the set RTT. */
export const RTT_TOLERANCE = 0.02;
/** Allowed error of direct iperf3 against the set rate. */
export const RATE_TOLERANCE = 0.1;
/** Above this share of one core, the emulator itself may be the bottleneck. */
export const EMULATOR_CPU_LIMIT = 0.8;

/** The check of one setting. */
export interface SettingCheck {
  key: string;
  setting: WanSetting;
  ping?: PingResult;
  rttErrorPct?: number;
  /** Direct iperf3 -R, Mbit/s (lossless settings only). */
  directMbit?: number;
  rateErrorPct?: number;
  /** The emulator's CPU during that iperf3, share of one core. */
  emulatorCpu?: number;
  /** Congestion control seen on the direct iperf3's sockets (`ss -ti`). */
  ccSeen?: string[];
  /** The emulator's counters over every measured run on this setting. */
  measured?: { pkts: number; lost: number; overflow: number; lateAvgUs: number; lateMaxUs: number };
  problems: string[];
}

/** The whole check. */
export interface WanCheck {
  ok: boolean;
  checks: SettingCheck[];
  /** Facts about the emulated link. */
  facts: Record<string, unknown>;
}

/** A setting's key: the same for every workload that uses the same link. */
export function settingKey(s: WanSetting): string {
  return `${s.rateMbit}mbit-${s.rttMs}ms-${s.lossPct}pct-${s.cc}`;
}

/** Runs the check for each distinct setting. */
export async function checkWan(
  topo: Topology,
  settings: WanSetting[],
  env: { scope: Scope; tools: ToolPaths; opts: Options; progress(msg: string): void },
): Promise<WanCheck> {
  const wan = topo.wan;
  if (!wan) throw new Error('checkWan needs the WAN topology');
  const { scope, tools, opts } = env;
  const distinct = new Map<string, WanSetting>();
  for (const s of settings) distinct.set(settingKey(s), s);
  const checks: SettingCheck[] = [];
  const iperfPort = 5201;
  const server = scope.spawn(
    'check-iperf3-server',
    tools.iperf3 as string,
    ['-s', '-p', String(iperfPort), '--forceflush'],
    { netns: topo.netns.service },
  );
  await server.waitForLine((l) => l.includes('Server listening'), 10_000, 'iperf3 server');
  for (const [key, setting] of distinct) {
    const c: SettingCheck = { key, setting, problems: [] };
    checks.push(c);
    await wan.apply(setting);
    env.progress(`bench: checking the emulated link ${key}…`);
    c.ping = await wan.ping(opts.quick ? 5 : 20);
    c.rttErrorPct = (100 * (c.ping.avgMs - setting.rttMs)) / Math.max(setting.rttMs, 0.001);
    if (Math.abs(c.rttErrorPct) > RTT_TOLERANCE * 100) {
      c.problems.push(`ping RTT ${c.ping.avgMs} ms is not within 2 % of ${setting.rttMs} ms`);
    }
    if (setting.lossPct === 0) {
      const secs = opts.quick ? 1 : 5;
      const omit = opts.quick ? 1 : 2;
      const pid = wan.emulatorPid;
      const cpu0 = pid ? readCpuSeconds(pid) : undefined;
      const t0 = performance.now();
      const ss = new Promise((r) => setTimeout(r, (omit + secs / 2) * 1000)).then(() =>
        scope.run('check-ss', 'ss', ['-tinH', 'dst', topo.serviceAddr], {
          timeoutMs: 5000,
          netns: topo.netns.visitor,
        }),
      );
      ss.catch(() => {});
      await iperfIdle(server, async () => {
        const r = await scope.run('check-ss', 'ss', ['-tanH', `sport = :${iperfPort}`], {
          timeoutMs: 5000,
          netns: topo.netns.service,
        });
        return openConnStates(r.stdout);
      });
      const r = await scope.run(
        'check-iperf3',
        tools.iperf3 as string,
        ['-c', topo.serviceAddr, '-p', String(iperfPort), '-R', '-C', setting.cc, '-t', String(secs)].concat([
          '-O',
          String(omit),
          '-J',
          '--connect-timeout',
          '5000',
        ]),
        { timeoutMs: (secs + omit) * 1000 + 30_000, netns: topo.netns.visitor },
      );
      const wall = (performance.now() - t0) / 1000;
      const cpu1 = pid ? readCpuSeconds(pid) : undefined;
      try {
        const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
        const bps = j.end?.sum_received?.bits_per_second;
        if (!bps) throw new Error(r.stdout.slice(-300) || r.stderr.slice(-300));
        c.directMbit = bps / 1e6;
        c.rateErrorPct = (100 * (c.directMbit - setting.rateMbit)) / setting.rateMbit;
        if (Math.abs(c.rateErrorPct) > RATE_TOLERANCE * 100) {
          c.problems.push(
            `direct iperf3 ${fmtNum(c.directMbit)} Mbit/s is not within 10 % of ${setting.rateMbit}`,
          );
        }
      } catch (err) {
        c.problems.push(`direct iperf3 failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (cpu0 !== undefined && cpu1 !== undefined) {
        c.emulatorCpu = (cpu1 - cpu0) / wall;
        if (c.emulatorCpu > EMULATOR_CPU_LIMIT) {
          c.problems.push(`the emulator used ${(100 * c.emulatorCpu).toFixed(0)} % of a core`);
        }
      }
      try {
        const out = (await withTimeout(ss, 10_000, 'ss')).stdout;
        c.ccSeen = [...new Set([...out.matchAll(/\b(cubic|bbr|reno)\b/g)].map((m) => m[1] as string))];
        if (!c.ccSeen.includes(setting.cc) || c.ccSeen.length !== 1) {
          c.problems.push(`the WAN sockets use ${c.ccSeen.join(', ') || 'nothing'}, not ${setting.cc}`);
        }
      } catch (err) {
        c.problems.push(`ss failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  await server.stop(1000);
  return {
    ok: checks.every((c) => c.problems.length === 0),
    checks,
    facts: {
      mtu: wan.mtu,
      emulatorRealtime: wan.emulatorRealtime,
      socketBuffers: 'tcp_rmem 4096 1048576 64 MiB and tcp_wmem max 64 MiB on both end hosts',
      queue: 'tbf queue of half the RTT at the rate (at least 5 ms) on each direction',
    },
  };
}

/** Adds the emulator's counters over one measured run (same emulator before and after) to its check. */
export function addMeasured(
  check: WanCheck | undefined,
  s: WanSetting,
  before: EmulatorStats,
  after: EmulatorStats,
): void {
  const c = check?.checks.find((x) => x.key === settingKey(s));
  if (!c) return;
  if (!c.measured) c.measured = { pkts: 0, lost: 0, overflow: 0, lateAvgUs: 0, lateMaxUs: 0 };
  const m = c.measured;
  const out = after.pkts_out - before.pkts_out;
  const lateSum = after.late_avg_us * after.pkts_out - before.late_avg_us * before.pkts_out;
  const outBefore = m.pkts - m.lost - m.overflow;
  const total = m.lateAvgUs * outBefore + lateSum;
  m.pkts += after.pkts_in - before.pkts_in;
  m.lost += after.lost - before.lost;
  m.overflow += after.overflow - before.overflow;
  m.lateAvgUs = outBefore + out > 0 ? total / (outBefore + out) : 0;
  // The emulator keeps only its maximum since it started (the check's own traffic included).
  m.lateMaxUs = Math.max(m.lateMaxUs, after.late_max_us);
}

/** The check as a markdown table, with a line of facts. */
export function checkTable(check: WanCheck): string {
  const rows = check.checks.map((c) => {
    const s = c.setting;
    const ping = c.ping
      ? `${c.ping.avgMs.toFixed(2)} (${c.ping.minMs.toFixed(2)}–${c.ping.maxMs.toFixed(2)}), ${sign(c.rttErrorPct)} %`
      : '—';
    const rate =
      c.directMbit !== undefined ? `${fmtNum(c.directMbit)}, ${sign(c.rateErrorPct)} %` : 'n/a (loss)';
    const cpu = c.emulatorCpu !== undefined ? `${(100 * c.emulatorCpu).toFixed(0)} %` : '—';
    const lost = c.measured?.pkts
      ? `${((100 * c.measured.lost) / c.measured.pkts).toFixed(3)} % of ${c.measured.pkts.toLocaleString('en-US')}`
      : '—';
    const late = c.measured?.pkts
      ? `${c.measured.lateAvgUs.toFixed(0)} / ${fmtNum(c.measured.lateMaxUs)}`
      : '—';
    const ok = c.problems.length === 0 ? 'ok' : `**${c.problems.join('; ')}**`;
    return `| ${s.rttMs} ms, ${s.lossPct} % loss, ${fmtNum(s.rateMbit)} Mbit/s, ${s.cc} | ${ping} | ${rate} | ${cpu} | ${c.ccSeen?.join(', ') ?? '—'} | ${lost} | ${late} | ${ok} |`;
  });
  return [
    '| link setting | ping RTT, ms: avg (min–max), error | direct iperf3 -R, Mbit/s, error | emulator CPU | CC on the WAN sockets | loss applied in the runs | emulator lateness avg / max, µs | check |',
    '|---|---:|---:|---:|---|---:|---:|---|',
    ...rows,
  ].join('\n');
}

function sign(v: number | undefined): string {
  if (v === undefined) return '?';
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;
}
