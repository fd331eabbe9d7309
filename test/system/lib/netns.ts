/**
 * Network namespaces for system tests and the WAN benchmark. Everything made here lives inside
 * namespaces this process creates (veth pairs are created directly in them, so the host's own
 * network is never touched), carries a unique name (`mtt-<pid>-<random>-<name>`), and is removed by
 * `close()`, at process exit, on SIGINT/SIGTERM/SIGHUP, and, for a process killed with SIGKILL, by
 * the next `NetLab.create()` on the machine (it removes namespaces whose creating pid is gone).
 * Needs root and iproute2 + nftables (CI runs as root; `requireNetTools()` names the apt-get line).
 *
 * ```ts
 * const lab = await NetLab.forTest(t, 'partition');  // closed after the test, pass or fail
 * const a = await lab.namespace('client');           // a fresh netns with lo up
 * const b = await lab.namespace('server');
 * const link = await lab.link(a, b, { a: '10.7.0.1/24', b: '10.7.0.2/24' }); // a veth pair, up
 * const srv = b.spawn('server', process.execPath, ['server.js']);   // a Proc (bench/lib/procs.ts):
 * await srv.waitForLine((l) => l.includes('ready'), 5000, 'server'); // output kept, killed on close
 * const r = await a.run('curl', ['-s', 'http://10.7.0.2:8080/']);    // to completion; throws on exit ≠ 0
 * const sock = await a.connect('10.7.0.2', 8080);   // a net.Socket from this process, dialled inside a
 * const cut = await a.block({ peer: '10.7.0.2' });  // nft drop both ways (a partition)
 * await cut.remove();
 * await link.a.rate({ mbit: 10 });                   // tbf on a's side of the pair (egress)
 * await lab.close();
 * ```
 *
 * `ns.connect()` goes through a small relay process inside the namespace (ns-bridge.ts) over a Unix
 * socket, so tests can hold real sockets into a namespace in-process; it costs a relay hop, so do not
 * time through it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Proc, type SpawnOptions, sleep, withTimeout } from '../../../bench/lib/procs.js';
import { findProgram } from '../../lib/programs.js';

/** The programs this library drives and the Debian package of each. */
const NET_TOOLS: Record<string, string> = { ip: 'iproute2', tc: 'iproute2', nft: 'nftables' };

/** Where the system tests find programs (shared with the lower tiers: test/lib/programs.ts). */
export { findProgram };

/**
 * Throws unless running as root with `ip`, `tc`, `nft` and each of `extra` (program → Debian package)
 * installed; the message is the apt-get line that fixes it.
 */
export function requireNetTools(extra: Record<string, string> = {}): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('network namespaces need root: run the system tests as root (CI does)');
  }
  const wanted = { ...NET_TOOLS, ...extra };
  const missing = Object.keys(wanted).filter((p) => !findProgram(p));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((p) => wanted[p]))].join(' ');
    throw new Error(
      `${missing.join(', ')} not found: install with apt-get install -y --no-install-recommends ${pkgs}`,
    );
  }
}

/** What `run()` returns. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link Netns.run}. */
export interface RunOptions extends Omit<SpawnOptions, 'netns' | 'logFile'> {
  /** Bound on the run (default 30 s); the process is killed after it. */
  timeoutMs?: number;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFail?: boolean;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
}

/** What {@link Netns.block} drops: packets matching every given field. */
export interface BlockMatch {
  /** A peer address or CIDR (IPv4 or IPv6): packets from it and to it. */
  peer?: string;
  /** An interface in this namespace: packets in through it and out through it. */
  iface?: string;
  /** Only incoming (`in`) or outgoing (`out`) packets; default both. */
  direction?: 'in' | 'out' | 'both';
}

/** A set of drop rules; `remove()` lifts them. */
export interface Block {
  remove(): Promise<void>;
}

/** Options of {@link LinkEnd.rate}. */
export interface RateOptions {
  mbit: number;
  /** tbf bucket size; default max(64 KiB, 4 ms at the rate). */
  burstBytes?: number;
  /** Longest a packet may wait in tbf's queue before it is dropped (the bottleneck buffer); default 50. */
  queueMs?: number;
}

/** One side of a veth pair. */
export interface LinkEnd {
  ns: Netns;
  ifname: string;
  /** The address without its prefix length. */
  address: string;
  /** As given, with the prefix length. */
  cidr: string;
  /** Limits what leaves through this end with tbf (replaces any earlier limit). */
  rate(opts: RateOptions): Promise<void>;
  /** Removes the limit. */
  clearRate(): Promise<void>;
}

/** A veth pair between two namespaces. */
export interface Link {
  a: LinkEnd;
  b: LinkEnd;
}

/** Options of {@link NetLab.link}. */
export interface LinkOptions {
  /** Address with prefix length for a's end, e.g. "10.7.0.1/24" or "fd00::1/64". */
  a: string;
  b: string;
  /** Default 1500. */
  mtu?: number;
  /** Interface names (max 15 characters); default "to-<other namespace's name>". */
  aName?: string;
  bName?: string;
}

const BRIDGE = fileURLToPath(new URL('./ns-bridge.js', import.meta.url));
const NAME_RE = /^mtt-(\d+)-[0-9a-f]{6}-/;
const RUN_NETNS = '/run/netns';

function ipBin(): string {
  return findProgram('ip') ?? 'ip';
}

function pidAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Every pid inside a namespace (`ip netns pids`), or none. */
function netnsPids(name: string): number[] {
  try {
    return execFileSync(ipBin(), ['netns', 'pids', name], { encoding: 'utf8', timeout: 5000 })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Kills everything inside a namespace and deletes it; synchronous, for exit handlers too. */
function destroyNetnsSync(name: string): void {
  // A process that set up its own session (a daemon) is not in any group we know: find it by netns.
  for (let round = 0; round < 3; round++) {
    const pids = netnsPids(name);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  try {
    execFileSync(ipBin(), ['netns', 'del', name], { stdio: 'ignore', timeout: 5000 });
  } catch {
    // already gone
  }
}

/** Removes namespaces and folders left by processes of this library that died without cleaning up. */
function sweepStale(): void {
  let names: string[] = [];
  try {
    names = readdirSync(RUN_NETNS);
  } catch {
    // no namespaces at all
  }
  for (const n of names) {
    const m = NAME_RE.exec(n);
    if (m && !pidAlive(Number(m[1]))) destroyNetnsSync(n);
  }
  for (const d of readdirSync(os.tmpdir())) {
    const m = /^mtt-netns-(\d+)-/.exec(d);
    if (m && !pidAlive(Number(m[1]))) rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
  }
}

const liveLabs = new Set<NetLab>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const lab of [...liveLabs]) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      for (const lab of [...liveLabs]) lab.destroySync();
      // When nobody else handles the signal, end the way the signal would have.
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** A set of namespaces, links and processes that end together. */
export class NetLab {
  /** `<pid>-<random>`, in every name this lab makes. */
  readonly id: string;
  /** A private temp folder (Unix sockets, rule files), removed on close. */
  readonly dir: string;
  readonly #namespaces: Netns[] = [];
  readonly #procs = new Set<Proc>();
  #closed = false;

  private constructor() {
    this.id = `${process.pid}-${randomBytes(3).toString('hex')}`;
    this.dir = mkdtempSync(path.join(os.tmpdir(), `mtt-netns-${this.id}-`));
  }

  /** A new lab; checks the tools first and removes what dead processes left behind. */
  static async create(): Promise<NetLab> {
    requireNetTools();
    sweepStale();
    installHandlers();
    const lab = new NetLab();
    liveLabs.add(lab);
    return lab;
  }

  /** A new lab that is closed after the test `t`, whether it passed or not. */
  static async forTest(t: TestContext): Promise<NetLab> {
    const lab = await NetLab.create();
    t.after(() => lab.close());
    return lab;
  }

  /** The namespaces made so far. */
  get namespaces(): readonly Netns[] {
    return this.#namespaces;
  }

  /** A new namespace with loopback up; `name` (letters, digits, '-') is the readable part. */
  async namespace(name: string): Promise<Netns> {
    if (this.#closed) throw new Error('the lab is closed');
    if (!/^[a-z0-9-]{1,20}$/i.test(name)) throw new Error(`bad namespace name ${JSON.stringify(name)}`);
    const full = `mtt-${this.id}-${name}`;
    if (this.#namespaces.some((n) => n.name === full)) throw new Error(`namespace ${name} exists already`);
    await hostRun(ipBin(), ['netns', 'add', full]);
    const ns = new Netns(this, full, name);
    this.#namespaces.push(ns);
    await ns.run('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair between `a` and `b` with the given addresses, both ends up. */
  async link(a: Netns, b: Netns, opts: LinkOptions): Promise<Link> {
    const mtu = String(opts.mtu ?? 1500);
    const aName = opts.aName ?? a.freeIfname(`to-${b.short}`);
    const bName = opts.bName ?? b.freeIfname(`to-${a.short}`);
    for (const n of [aName, bName])
      if (n.length > 15) throw new Error(`interface name ${n} is over 15 chars`);
    // Created inside a with its peer inside b: the pair never exists in the host's namespace.
    await a.run('ip', ['link', 'add', aName, 'mtu', mtu, 'type', 'veth', 'peer', 'name', bName]);
    await a.run('ip', ['link', 'set', bName, 'netns', b.name]);
    a.ifnames.add(aName);
    b.ifnames.add(bName);
    const end = (ns: Netns, ifname: string, cidr: string): LinkEnd => ({
      ns,
      ifname,
      cidr,
      address: cidr.split('/')[0] as string,
      rate: (r) => ns.rate(ifname, r, Number(mtu)),
      clearRate: async () => {
        await ns.run('tc', ['qdisc', 'del', 'dev', ifname, 'root'], { allowFail: true });
      },
    });
    for (const [ns, ifname, cidr] of [
      [a, aName, opts.a],
      [b, bName, opts.b],
    ] as const) {
      const v6 = cidr.includes(':');
      // No duplicate-address detection: an IPv6 address is usable at once.
      await ns.run('ip', [
        ...(v6 ? ['-6'] : []),
        'addr',
        'add',
        cidr,
        'dev',
        ifname,
        ...(v6 ? ['nodad'] : []),
      ]);
      await ns.run('ip', ['link', 'set', ifname, 'mtu', mtu, 'up']);
    }
    return { a: end(a, aName, opts.a), b: end(b, bName, opts.b) };
  }

  /** @internal Starts a process inside `ns`, owned by this lab. */
  spawnIn(ns: Netns, name: string, cmd: string, args: string[], opts: SpawnOptions): Proc {
    if (this.#closed) throw new Error('the lab is closed');
    const proc = new Proc(`${ns.short}/${name}`, cmd, args, { ...opts, netns: ns.name });
    this.#procs.add(proc);
    // What outlives its parent is still found by namespace when the lab closes.
    proc.exited.then(() => this.#procs.delete(proc));
    return proc;
  }

  /** Stops every process (SIGTERM, then SIGKILL), deletes every namespace and the temp folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#procs].map((p) => p.stop(1000)));
    for (const ns of this.#namespaces.reverse()) destroyNetnsSync(ns.name);
    rmSync(this.dir, { recursive: true, force: true });
    liveLabs.delete(this);
  }

  /** @internal The same as close(), at once and synchronously (exit and signal handlers). */
  destroySync(): void {
    this.#closed = true;
    for (const p of this.#procs) p.killSync();
    for (const ns of this.#namespaces) destroyNetnsSync(ns.name);
    rmSync(this.dir, { recursive: true, force: true });
    liveLabs.delete(this);
  }
}

/** Runs a command on the host (only `ip netns add` goes through here), rejecting on failure. */
async function hostRun(cmd: string, args: string[]): Promise<void> {
  const p = new Proc(path.basename(cmd), cmd, args, {});
  const done = await p.waitExit(15_000);
  if (!done) await p.stop(500);
  await sleep(10); // let the pipes drain after 'exit'
  if (!done || p.exit?.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${p.stderr.trim() || p.describeExit()}`);
  }
}

/** One network namespace of a lab. */
export class Netns {
  /** The full name, as `ip netns` knows it. */
  readonly name: string;
  /** The readable part of the name. */
  readonly short: string;
  /** @internal Interface names in use here. */
  readonly ifnames = new Set<string>(['lo']);
  readonly #lab: NetLab;
  #bridge: Promise<string> | undefined;
  #blocks = 0;

  /** @internal Made by {@link NetLab.namespace}. */
  constructor(lab: NetLab, name: string, short: string) {
    this.#lab = lab;
    this.name = name;
    this.short = short;
  }

  /** @internal An interface name not yet used here, from `base` (cut to 15 characters). */
  freeIfname(base: string): string {
    const cut = base.slice(0, 15);
    if (!this.ifnames.has(cut)) return cut;
    for (let i = 2; ; i++) {
      const n = `${base.slice(0, 15 - String(i).length)}${i}`;
      if (!this.ifnames.has(n)) return n;
    }
  }

  /** Runs a command inside this namespace to completion; rejects (with its stderr) on failure. */
  async run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const file = cmd.includes('/') ? cmd : (findProgram(cmd) ?? cmd);
    const p = this.#lab.spawnIn(this, cmd, file, args, { ...opts, stdin: opts.input !== undefined });
    if (opts.input !== undefined) {
      p.send(opts.input);
      p.closeStdin();
    }
    const timeoutMs = opts.timeoutMs ?? 30_000;
    if (!(await p.waitExit(timeoutMs))) {
      await p.stop(500);
      throw new Error(`${cmd} ${args.join(' ')} in ${this.short}: no exit within ${timeoutMs} ms`);
    }
    await sleep(10); // let the pipes drain after 'exit'
    const r: RunResult = {
      code: p.exit?.code ?? null,
      signal: p.exit?.signal ?? null,
      stdout: p.stdout,
      stderr: p.stderr,
    };
    if (r.code !== 0 && !opts.allowFail) {
      const why = (r.stderr || r.stdout).trim().slice(-500) || `exit ${r.code ?? r.signal}`;
      throw new Error(`${cmd} ${args.join(' ')} in ${this.short} failed: ${why}`);
    }
    return r;
  }

  /**
   * Starts a long-lived process inside this namespace, in its own process group; stdout and stderr
   * are kept (see Proc). It is stopped when the lab closes, or earlier with `proc.stop()`.
   */
  spawn(name: string, cmd: string, args: string[], opts: Omit<SpawnOptions, 'netns'> = {}): Proc {
    const file = cmd.includes('/') ? cmd : (findProgram(cmd) ?? cmd);
    return this.#lab.spawnIn(this, name, file, args, opts);
  }

  /** Sets a sysctl of this namespace, e.g. `sysctl('net.ipv4.ip_forward', '1')`. */
  async sysctl(key: string, value: string): Promise<void> {
    if (!/^[\w.-]+$/.test(key)) throw new Error(`bad sysctl key ${key}`);
    await this.run('sh', ['-c', `echo "$1" > "/proc/sys/${key.replace(/\./g, '/')}"`, 'sh', value]);
  }

  /**
   * A TCP connection to host:port made from inside this namespace, as a socket of this process.
   * Resolves once the far end accepted; rejects with the error the dial got (e.g. ECONNREFUSED).
   */
  async connect(host: string, port: number, timeoutMs = 10_000): Promise<net.Socket> {
    const sockPath = await this.#startBridge();
    return withTimeout(
      new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect({ path: sockPath, allowHalfOpen: true });
        let settled = false;
        const fail = (err: Error) => {
          if (settled) return;
          settled = true;
          sock.destroy();
          reject(err);
        };
        sock.on('error', fail);
        sock.on('close', () => fail(new Error(`connect ${host}:${port} in ${this.short}: bridge closed`)));
        sock.write(`${host} ${port}\n`);
        // The bridge answers '+' once connected, or '-reason\n' and closes.
        const onReadable = () => {
          const first = sock.read(1) as Buffer | null;
          if (first === null) return;
          sock.off('readable', onReadable);
          if (first[0] === 0x2b) {
            settled = true;
            sock.removeAllListeners('error');
            sock.removeAllListeners('close');
            resolve(sock);
            return;
          }
          const chunks: Buffer[] = [];
          sock.on('data', (d: Buffer) => chunks.push(d));
          sock.on('end', () => {
            const why = Buffer.concat(chunks).toString('utf8').trim();
            fail(new Error(`connect ${host}:${port} in ${this.short}: ${why}`));
          });
        };
        sock.on('readable', onReadable);
      }),
      timeoutMs,
      `connect ${host}:${port} in ${this.short}`,
    );
  }

  #startBridge(): Promise<string> {
    this.#bridge ??= (async () => {
      const sockPath = path.join(this.#lab.dir, `${this.short}.sock`);
      const p = this.spawn('bridge', process.execPath, [BRIDGE, sockPath], { stdin: true });
      await p.waitForLine((l) => l.includes('"ready"'), 10_000, `bridge in ${this.short}`);
      return sockPath;
    })();
    return this.#bridge;
  }

  /** Drops packets matching `match` (all given fields) in input, output and forward, until removed. */
  async block(match: BlockMatch): Promise<Block> {
    const conds: { in: string[]; out: string[] } = { in: [], out: [] };
    if (match.peer) {
      if (!/^[0-9a-f:.]+(\/\d+)?$/i.test(match.peer)) throw new Error(`bad peer ${match.peer}`);
      const fam = match.peer.includes(':') ? 'ip6' : 'ip';
      conds.in.push(`${fam} saddr ${match.peer}`);
      conds.out.push(`${fam} daddr ${match.peer}`);
    }
    if (match.iface) {
      if (!/^[\w.-]{1,15}$/.test(match.iface)) throw new Error(`bad interface ${match.iface}`);
      conds.in.push(`iifname "${match.iface}"`);
      conds.out.push(`oifname "${match.iface}"`);
    }
    if (conds.in.length === 0) throw new Error('block() needs a peer or an interface');
    const dir = match.direction ?? 'both';
    const ruleIn = dir !== 'out' ? `${conds.in.join(' ')} drop` : '';
    const ruleOut = dir !== 'in' ? `${conds.out.join(' ')} drop` : '';
    const table = `mtt_block_${++this.#blocks}`;
    const chain = (name: string, hook: string, rules: string[]) =>
      `  chain ${name} {\n    type filter hook ${hook} priority -200; policy accept;\n${rules
        .filter(Boolean)
        .map((r) => `    ${r}\n`)
        .join('')}  }\n`;
    const script =
      `table inet ${table} {\n` +
      chain('input', 'input', [ruleIn]) +
      chain('output', 'output', [ruleOut]) +
      chain('forward', 'forward', [ruleIn, ruleOut]) +
      '}\n';
    const file = path.join(this.#lab.dir, `${this.short}-${table}.nft`);
    writeFileSync(file, script);
    await this.run('nft', ['-f', file]);
    let removed = false;
    return {
      remove: async () => {
        if (removed) return;
        removed = true;
        await this.run('nft', ['delete', 'table', 'inet', table]);
      },
    };
  }

  /** @internal tbf on `ifname`'s egress. */
  async rate(ifname: string, r: RateOptions, mtu: number): Promise<void> {
    if (!(r.mbit > 0)) throw new Error('rate needs mbit > 0');
    const bytesPerSec = (r.mbit * 1e6) / 8;
    const burst = Math.round(r.burstBytes ?? Math.max(64 * 1024, bytesPerSec * 0.004, 2 * mtu));
    const queueMs = r.queueMs ?? 50;
    await this.run('tc', [
      'qdisc',
      'replace',
      'dev',
      ifname,
      'root',
      'tbf',
      'rate',
      `${r.mbit}mbit`,
      'burst',
      String(burst),
      'latency',
      `${queueMs}ms`,
    ]);
  }
}
