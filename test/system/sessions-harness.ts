/**
 * The session system tests' world: a client namespace and a server namespace joined by a veth pair,
 * the real `mtt server` and `mtt client` processes (the built CLI) inside them, a paced file source
 * as the client's local service, and visitors dialled from the server's side. Everything lives in
 * namespaces the test creates (test/system/lib/netns.ts) and is removed after it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Proc, sleep } from '../../bench/lib/procs.js';
import { type Link, NetLab, type Netns, requireNetTools } from './lib/netns.js';

/** The built CLI. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A JSON log line of an mtt process. */
export interface LogLine {
  time: string;
  level: string;
  msg: string;
  [k: string]: unknown;
}

/** Parses a line of a process's output as an mtt JSON log line (or undefined). */
export function logLine(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
}

/** Waits for a log line of `proc` that passes `test`; returns it with the epoch ms it carries. */
export async function waitLog(
  proc: Proc,
  test: (l: LogLine) => boolean,
  ms: number,
  what: string,
): Promise<LogLine & { at: number }> {
  const line = await proc.waitForLine(
    (raw) => {
      const l = logLine(raw);
      return l !== undefined && test(l);
    },
    ms,
    what,
  );
  const l = logLine(line)!;
  return { ...l, at: Date.parse(l.time) };
}

/** The lines of `proc` that pass `test`, so far. */
export function logLines(proc: Proc, test: (l: LogLine) => boolean): LogLine[] {
  return proc.stdout
    .split('\n')
    .map(logLine)
    .filter((l): l is LogLine => l !== undefined && test(l));
}

/** The world of one test. */
export interface SessionsLab {
  lab: NetLab;
  clientNs: Netns;
  serverNs: Netns;
  link: Link;
  /** The server's address on the veth pair. */
  serverIp: string;
  controlPort: number;
  /** The public port of the tunnel "files". */
  publicPort: number;
  /** Its file and the file's sha256. */
  file: { size: number; sha256: string };
  dir: string;
  startServer(extra?: string[]): Promise<Proc>;
  /** Starts a client (its config may be changed); resolves once its tunnels are active (unless `wait` is false). */
  startClient(opts?: { name?: string; config?: Record<string, unknown>; wait?: boolean }): Promise<Proc>;
  /** Downloads the file through the tunnel from the server's side; resolves with its sha256 and size. */
  download(timeoutMs: number): Promise<{ sha256: string; bytes: number; ms: number }>;
  /** A visitor that says something and waits for the end: when, and whether it was reset. */
  visit(
    timeoutMs?: number,
  ): Promise<{ ms: number; outcome: 'served' | 'reset' | 'ended' | 'refused' | 'timeout'; bytes: number }>;
  /** Drops everything between the two namespaces until `remove()`. */
  partition(): Promise<{ remove(): Promise<void> }>;
}

let subnet = 10 + Math.floor(Math.random() * 200);

/**
 * Builds the world: two namespaces, a veth pair, keys, the allow-list, a file source in the client
 * namespace. `fileBytes` is the size of the file the tunnel serves; `paceKiBps` the source's rate.
 */
export async function sessionsLab(
  t: TestContext,
  name: string,
  opts: { fileBytes?: number; paceKiBps?: number } = {},
): Promise<SessionsLab> {
  requireNetTools();
  const lab = await NetLab.forTest(t);
  void name;
  const clientNs = await lab.namespace('client');
  const serverNs = await lab.namespace('server');
  subnet = (subnet % 250) + 1;
  const n = subnet;
  const link = await lab.link(clientNs, serverNs, {
    a: `10.${n}.${(process.pid % 250) + 1}.1/24`,
    b: `10.${n}.${(process.pid % 250) + 1}.2/24`,
  });
  const serverIp = link.b.address;
  const dir = mkdtempSync(path.join(lab.dir, 'mtt-'));
  const node = process.execPath;
  for (const key of ['host_key', 'client_key']) {
    await clientNs.run(node, [CLI, 'keygen', '-f', path.join(dir, key)], { timeoutMs: 20_000 });
  }
  const { readFileSync } = await import('node:fs');
  const hostPub = readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim();
  const clientPub = readFileSync(path.join(dir, 'client_key.pub'), 'utf8').trim();
  writeFileSync(path.join(dir, 'allowed_keys'), `${clientPub}\n`, { mode: 0o600 });

  const fileBytes = opts.fileBytes ?? 8 * 1024 * 1024;
  const data = randomBytes(fileBytes);
  writeFileSync(path.join(dir, 'file.bin'), data);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const sourcePort = 7070;
  const pace = (opts.paceKiBps ?? 1024) * 1024;
  // The local service: sends the file at a steady pace to every connection, then ends it.
  const source = `const net = require('node:net'); const fs = require('node:fs');
    const data = fs.readFileSync(${JSON.stringify(path.join(dir, 'file.bin'))});
    const chunk = 16384, every = Math.max(1, Math.round(chunk / ${pace} * 1000));
    net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {}); s.resume();
      let off = 0; let stop = false; s.on('close', () => { stop = true; });
      const next = () => {
        if (stop) return;
        if (off >= data.length) return s.end();
        const ok = s.write(data.subarray(off, off += chunk));
        if (ok) setTimeout(next, every); else s.once('drain', () => setTimeout(next, every));
      };
      next();
    }).listen(${sourcePort}, '127.0.0.1', () => console.log('listening'));`;
  const src = clientNs.spawn('source', node, ['-e', source]);
  await src.waitForLine((l) => l === 'listening', 10_000, 'file source');

  const controlPort = 9000;
  const publicPort = 20_000 + Math.floor(Math.random() * 9000);
  const spawnMtt = (ns: Netns, label: string, args: string[]) =>
    ns.spawn(label, '/bin/sh', ['-c', 'exec "$@" 2>&1', 'sh', node, CLI, ...args]);

  const world: SessionsLab = {
    lab,
    clientNs,
    serverNs,
    link,
    serverIp,
    controlPort,
    publicPort,
    file: { size: fileBytes, sha256 },
    dir,
    async startServer(extra = []) {
      const p = spawnMtt(serverNs, 'mtt-server', [
        'server',
        '--port',
        String(controlPort),
        '--host',
        '0.0.0.0',
        '--host-key',
        path.join(dir, 'host_key'),
        '--allowed-keys',
        path.join(dir, 'allowed_keys'),
        '--allow-ports',
        '20000-29999',
        '--log-format',
        'json',
        ...extra,
      ]);
      await waitLog(p, (l) => l.msg === 'server listening', 15_000, 'the server listens');
      return p;
    },
    async startClient(o = {}) {
      const label = o.name ?? 'client';
      const config = {
        server: `${serverIp}:${controlPort}`,
        serverKey: hostPub,
        identity: path.join(dir, 'client_key'),
        knownServers: path.join(dir, `${label}-known`),
        tunnels: [{ name: 'files', remotePort: publicPort, localHost: '127.0.0.1', localPort: sourcePort }],
        ...o.config,
      };
      const file = path.join(dir, `${label}.json`);
      writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
      const p = spawnMtt(clientNs, `mtt-${label}`, ['client', '--config', file, '--log-format', 'json']);
      if (o.wait !== false)
        await waitLog(p, (l) => l.msg === 'tunnel active', 20_000, `${label}: tunnel active`);
      return p;
    },
    async download(timeoutMs) {
      const started = Date.now();
      const sock = await serverNs.connect('127.0.0.1', publicPort, 5000);
      return new Promise((resolve, reject) => {
        const hash = createHash('sha256');
        let bytes = 0;
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error(`download not done within ${timeoutMs} ms (${bytes} of ${fileBytes} bytes)`));
        }, timeoutMs);
        sock.on('data', (c: Buffer) => {
          hash.update(c);
          bytes += c.length;
        });
        sock.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        sock.on('end', () => {
          clearTimeout(timer);
          sock.end();
          resolve({ sha256: hash.digest('hex'), bytes, ms: Date.now() - started });
        });
      });
    },
    async visit(timeoutMs = 15_000) {
      const started = Date.now();
      let sock: net.Socket;
      try {
        sock = await serverNs.connect('127.0.0.1', publicPort, timeoutMs);
      } catch (e) {
        return {
          ms: Date.now() - started,
          outcome: /ECONNREFUSED/.test(String(e)) ? 'refused' : 'timeout',
          bytes: 0,
        };
      }
      return new Promise((resolve) => {
        let bytes = 0;
        let reset = false;
        const timer = setTimeout(() => {
          sock.destroy();
          resolve({ ms: Date.now() - started, outcome: 'timeout', bytes });
        }, timeoutMs);
        sock.on('data', (c: Buffer) => {
          bytes += c.length;
          // One byte from the service is enough: this visitor was served.
          sock.destroy();
        });
        sock.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'ECONNRESET') reset = true;
        });
        // Through the namespace bridge a reset arrives as the end of the stream (the bridge ends its
        // side at once); both mean the visitor was turned away.
        const done = () => {
          clearTimeout(timer);
          resolve({
            ms: Date.now() - started,
            outcome: bytes > 0 ? 'served' : reset ? 'reset' : 'ended',
            bytes,
          });
          sock.destroy();
        };
        sock.on('end', done);
        sock.on('close', done);
        sock.write('hello?');
      });
    },
    async partition() {
      return clientNs.block({ peer: serverIp });
    },
  };
  return world;
}

/** Polls until a visitor is served (gets a byte from the service); resolves with when that was. */
export async function servedAgain(w: SessionsLab, withinMs: number): Promise<number> {
  const end = Date.now() + withinMs;
  for (;;) {
    const v = await w.visit(2000);
    if (v.bytes > 0) return Date.now();
    if (Date.now() > end) throw new Error(`no visitor was served within ${withinMs} ms`);
    await sleep(100);
  }
}
