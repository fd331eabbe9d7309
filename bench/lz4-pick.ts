/**
 * Pick the LZ4 package for per-frame compression: lz4-napi vs lz4-wasm-nodejs, by measurement.
 *
 * Build: `npx tsc -p tsconfig.json`; run: `node dist/bench/lz4-pick.js [--runs 3]`.
 *
 * The parent process only orchestrates. Every measurement runs in a fresh child process
 * (`--child <mode>`), so RSS numbers start clean and a native crash (abort/SIGSEGV) in one test
 * shows up as an exit signal instead of killing the harness. Each mode is run once per "run";
 * the printed numbers are the median over runs of the per-run medians (5 repetitions each).
 *
 * MB/s is always 1e6 bytes of *uncompressed* data per second, for compress and decompress alike.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { prng } from './corpus.js';

const require = createRequire(import.meta.url);

type PkgId = 'napi' | 'wasm';
const PKGS: readonly PkgId[] = ['napi', 'wasm'];
const PKG_NAME: Record<PkgId, string> = { napi: 'lz4-napi', wasm: 'lz4-wasm-nodejs' };

interface Codec {
  compress(input: Buffer): Uint8Array;
  decompress(input: Uint8Array): Uint8Array;
  /** lz4-wasm only: its linear memory, which can grow but never shrink. */
  wasmMemoryBytes?: () => number;
}

function loadCodec(id: PkgId): Codec {
  if (id === 'napi') {
    const m = require('lz4-napi') as typeof import('lz4-napi');
    return { compress: (b) => m.compressSync(b), decompress: (b) => m.uncompressSync(b) };
  }
  const m = require('lz4-wasm-nodejs') as typeof import('lz4-wasm-nodejs') & {
    __wasm: { memory: { buffer: ArrayBuffer } };
  };
  return {
    compress: (b) => m.compress(b),
    decompress: (b) => m.decompress(b),
    wasmMemoryBytes: () => m.__wasm.memory.buffer.byteLength,
  };
}

// ---------------------------------------------------------------------------------------------
// Small utilities

const randInt = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const u8eq = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

function procStatus(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(Vm\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * 1024;
  }
  return out;
}
const MiB = (n: number): string => (n / 1048576).toFixed(1);

function describeThrown(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.constructor.name}${code ? `[${String(code)}]` : ''}: ${e.message}`;
  }
  return `non-Error ${typeof e}: ${String(e)}`;
}
/** Error message with the numbers stripped, so outcomes can be bucketed. */
const errorClass = (e: unknown): string => describeThrown(e).replace(/\d+/g, 'N');

// ---------------------------------------------------------------------------------------------
// Test data

/** Realistic structured log stream (JSON lines), deterministic for a given seed. */
function genJsonLogs(totalBytes: number, seed: number): Buffer {
  const r = prng(seed);
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(r() * 16).toString(16);
    return s;
  };
  const uuid = (): string =>
    `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(r, ['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
  const services = ['gateway', 'auth', 'billing', 'search', 'inventory'];
  const routes = [
    'GET /api/v1/users/{id}',
    'GET /api/v1/users/{id}/orders',
    'POST /api/v1/orders',
    'GET /api/v1/orders/{id}/items',
    'PUT /api/v1/cart/{id}',
    'DELETE /api/v1/sessions/{hex}',
    'GET /api/v2/search?q={word}&page={n}',
    'GET /healthz',
    'GET /metrics',
    'GET /static/js/app.{hex}.js',
  ];
  const words = ['shoes', 'laptop', 'coffee', 'garden+hose', 'usb-c', 'monitor', 'desk', 'lamp'];
  const agents = [
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
    'curl/8.5.0',
    'okhttp/4.12.0',
    'python-requests/2.31.0',
  ];
  const errors = ['ECONNRESET upstream closed', 'timeout after 5000ms', 'deadlock detected', 'card declined'];
  let ts = Date.UTC(2025, 0, 15, 9, 30, 0);
  const parts: string[] = [];
  let size = 0;
  while (size < totalBytes) {
    ts += randInt(r, 0, 40);
    const x = r();
    const level = x < 0.12 ? 'debug' : x < 0.88 ? 'info' : x < 0.96 ? 'warn' : 'error';
    const [method, tmpl] = pick(r, routes).split(' ') as [string, string];
    const path = tmpl
      .replace('{id}', String(randInt(r, 1, 2_000_000)))
      .replace('{hex}', hex(16))
      .replace('{word}', pick(r, words))
      .replace('{n}', String(randInt(r, 1, 20)));
    const status =
      level === 'error'
        ? pick(r, [500, 502, 503])
        : level === 'warn'
          ? pick(r, [404, 409, 429])
          : pick(r, [200, 200, 200, 201, 204, 304]);
    const rec: Record<string, unknown> = {
      ts: new Date(ts).toISOString(),
      level,
      service: pick(r, services),
      host: `web-${randInt(r, 1, 12)}.eu-west-1.internal`,
      msg: level === 'debug' ? 'cache lookup' : 'request completed',
      method,
      path,
      status,
      duration_ms: Math.round(Math.exp(r() * 7) * 100) / 1000,
      bytes: randInt(r, 0, 250_000),
      request_id: uuid(),
      trace_id: hex(32),
      user_id: r() < 0.3 ? null : randInt(r, 1, 500_000),
      ip: `10.${randInt(r, 0, 255)}.${randInt(r, 0, 255)}.${randInt(r, 1, 254)}`,
      ua: pick(r, agents),
    };
    if (level === 'error') rec.error = pick(r, errors);
    if (level === 'debug') rec.cache = { key: `user:${randInt(r, 1, 500_000)}`, hit: r() < 0.8 };
    const line = `${JSON.stringify(rec)}\n`;
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join(''), 'utf8').subarray(0, totalBytes);
}

/** Cut a stream into consecutive fixed-size chunks (cutting mid-line, like a tunnel would). */
function chunksOf(buf: Buffer, size: number, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(Buffer.from(buf.subarray(i * size, (i + 1) * size)));
  return out;
}

interface Dataset {
  key: string;
  label: string;
  inputs: Buffer[];
  /** true: report µs per call instead of MB/s */
  perCall: boolean;
}

function datasets(): Dataset[] {
  const logs = genJsonLogs(4 * 1048576, 42);
  const small: Buffer[] = [];
  for (let i = 0; i < 512; i++) small.push(Buffer.from(logs.subarray(i * 1777, i * 1777 + 100)));
  return [
    { key: 'json16k', label: 'JSON logs 16 KiB', inputs: chunksOf(logs, 16384, 64), perCall: false },
    { key: 'json64k', label: 'JSON logs 64 KiB', inputs: chunksOf(logs, 65536, 32), perCall: false },
    {
      key: 'rand16k',
      label: 'random 16 KiB',
      inputs: Array.from({ length: 64 }, () => randomBytes(16384)),
      perCall: false,
    },
    {
      key: 'rand64k',
      label: 'random 64 KiB',
      inputs: Array.from({ length: 32 }, () => randomBytes(65536)),
      perCall: false,
    },
    {
      key: 'rand256k',
      label: 'random 256 KiB',
      inputs: Array.from({ length: 16 }, () => randomBytes(262144)),
      perCall: false,
    },
    { key: 'small100', label: '100-byte JSON msgs', inputs: small, perCall: true },
  ];
}

// ---------------------------------------------------------------------------------------------
// Independent reference decoder for the raw LZ4 *block* format (no frame header), used to prove
// the packages emit `u32le(uncompressed size) ++ lz4 block` and nothing else.

function refDecodeBlock(src: Uint8Array, outLen: number): Uint8Array {
  const out = new Uint8Array(outLen);
  let ip = 0;
  let op = 0;
  const byte = (): number => {
    if (ip >= src.length) throw new Error('ref: truncated');
    return src[ip++]!;
  };
  const extLen = (base: number): number => {
    let n = base;
    if (base === 15) {
      let b: number;
      do {
        b = byte();
        n += b;
      } while (b === 255);
    }
    return n;
  };
  while (ip < src.length) {
    const token = byte();
    const lit = extLen(token >>> 4);
    if (ip + lit > src.length || op + lit > outLen) throw new Error('ref: literal out of bounds');
    out.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === src.length) break; // last sequence: literals only
    const off = byte() | (byte() << 8);
    if (off === 0 || off > op) throw new Error('ref: bad offset');
    const ml = extLen(token & 15) + 4;
    if (op + ml > outLen) throw new Error('ref: match out of bounds');
    for (let i = 0; i < ml; i++, op++) out[op] = out[op - off]!;
  }
  if (op !== outLen) throw new Error(`ref: decoded ${op} bytes, expected ${outLen}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Child modes. Each prints exactly one `RESULT <json>` line at the end.

function emit(result: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

interface FormatRow {
  input: string;
  len: number;
  prefixOk: Record<PkgId, boolean>;
  refDecodeOk: Record<PkgId, boolean>;
  napiDecodesWasm: boolean;
  wasmDecodesNapi: boolean;
  identicalBytes: boolean;
  compressedLen: Record<PkgId, number>;
}

function childFormat(): void {
  const c = { napi: loadCodec('napi'), wasm: loadCodec('wasm') };
  const logs = genJsonLogs(1048576, 7);
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['1 byte', Buffer.from('x')],
    ['100 B json', logs.subarray(0, 100)],
    ['16 KiB json', logs.subarray(0, 16384)],
    ['64 KiB json', logs.subarray(0, 65536)],
    ['64 KiB zeros', Buffer.alloc(65536)],
    ['256 KiB random', randomBytes(262144)],
    ['1 MiB json', logs],
  ];
  const rows: FormatRow[] = [];
  for (const [name, x] of cases) {
    const out = { napi: c.napi.compress(x), wasm: c.wasm.compress(x) };
    const row: FormatRow = {
      input: name,
      len: x.length,
      prefixOk: { napi: false, wasm: false },
      refDecodeOk: { napi: false, wasm: false },
      napiDecodesWasm: false,
      wasmDecodesNapi: false,
      identicalBytes: u8eq(out.napi, out.wasm),
      compressedLen: { napi: out.napi.length, wasm: out.wasm.length },
    };
    for (const p of PKGS) {
      const o = out[p];
      const dv = new DataView(o.buffer, o.byteOffset, o.length);
      // LZ4 *frame* format would start with magic 0x184D2204 instead of the size.
      row.prefixOk[p] = o.length >= 4 && dv.getUint32(0, true) === x.length;
      try {
        row.refDecodeOk[p] = u8eq(refDecodeBlock(o.subarray(4), x.length), x);
      } catch {
        row.refDecodeOk[p] = false;
      }
    }
    try {
      row.napiDecodesWasm = u8eq(c.napi.decompress(out.wasm), x);
    } catch {}
    try {
      row.wasmDecodesNapi = u8eq(c.wasm.decompress(out.napi), x);
    } catch {}
    rows.push(row);
  }
  emit(rows);
}

interface BenchCell {
  /** per repetition: MB/s (or µs/call for per-call datasets) */
  compress: number[];
  decompress: number[];
  ratio: number;
}
type BenchResult = Record<string, Record<PkgId, BenchCell>>;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Throughput. The loop yields to the event loop after every ~1 MiB of input, as a tunnel does
 * between socket reads: lz4-napi's compressSync output memory is only released by N-API
 * finalizers that run on a later event-loop turn, so a never-yielding loop measures page faults
 * rather than LZ4 (see the RSS section, which measures both). The yield is inside the timing.
 */
async function childBench(): Promise<void> {
  const REPS = 5;
  const TARGET_MS = 150;
  const WARMUP_MS = 300;
  const c = { napi: loadCodec('napi'), wasm: loadCodec('wasm') };
  let sink = 0;
  let batch = 16;
  const run = async (fn: (i: number) => void, iters: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) {
      fn(i);
      if (i % batch === batch - 1) await tick();
    }
    return Number(process.hrtime.bigint() - t0) / 1e6; // ms
  };
  const result: BenchResult = {};
  for (const ds of datasets()) {
    const bytesPer = ds.inputs[0]!.length;
    batch = Math.max(1, Math.round(1048576 / bytesPer));
    const comp = {
      napi: ds.inputs.map((x) => c.napi.compress(x)),
      wasm: ds.inputs.map((x) => c.wasm.compress(x)),
    };
    const ops: Record<PkgId, Record<'compress' | 'decompress', (i: number) => void>> = {
      napi: { compress: () => {}, decompress: () => {} },
      wasm: { compress: () => {}, decompress: () => {} },
    };
    for (const p of PKGS) {
      const inputs = ds.inputs;
      const blocks = comp[p];
      const n = inputs.length;
      ops[p].compress = (i) => {
        sink += c[p].compress(inputs[i % n]!).length;
      };
      ops[p].decompress = (i) => {
        sink += c[p].decompress(blocks[i % n]!).length;
      };
    }
    // Warm-up (JIT, wasm tier-up, allocator pools) and calibration to ~TARGET_MS per repetition.
    const iters: Record<string, number> = {};
    for (const p of PKGS) {
      for (const op of ['compress', 'decompress'] as const) {
        let n = 16;
        let ms = 0;
        let total = 0;
        while (total < WARMUP_MS) {
          ms = await run(ops[p][op], n);
          total += ms;
          if (ms < WARMUP_MS / 4) n *= 2;
        }
        iters[`${p}.${op}`] = Math.max(4, Math.round((n * TARGET_MS) / ms));
      }
    }
    const cell = (p: PkgId): BenchCell => ({
      compress: [],
      decompress: [],
      ratio: comp[p].reduce((a, b) => a + b.length, 0) / (bytesPer * ds.inputs.length),
    });
    const res: Record<PkgId, BenchCell> = { napi: cell('napi'), wasm: cell('wasm') };
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 ? (['wasm', 'napi'] as const) : (['napi', 'wasm'] as const); // interleave
      for (const p of order) {
        for (const op of ['compress', 'decompress'] as const) {
          const n = iters[`${p}.${op}`]!;
          const ms = await run(ops[p][op], n);
          res[p][op].push(ds.perCall ? (ms * 1000) / n : (bytesPer * n) / 1e6 / (ms / 1000));
        }
      }
    }
    result[ds.key] = res;
  }
  if (sink === -1) console.log(sink);
  emit(result);
}

interface RssResult {
  baseline: number;
  after10k: number;
  /** after gc() and a few event-loop turns (lets deferred N-API finalizers run) */
  afterGc: number;
  maxRss: number;
  wasmMemBefore?: number;
  wasmMemAfter?: number;
  ms: number;
}

/** RSS around 10k compressions of 64 KiB random; `tight` never yields, `yield` yields after each call. */
async function childRss(p: PkgId, mode: 'tight' | 'yield'): Promise<void> {
  const c = loadCodec(p);
  const inputs = Array.from({ length: 16 }, () => randomBytes(65536));
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  c.decompress(c.compress(inputs[0]!)); // load + one call
  gc();
  await tick();
  const baseline = process.memoryUsage().rss;
  const wasmMemBefore = c.wasmMemoryBytes?.();
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < 10_000; i++) {
    sink += c.compress(inputs[i & 15]!).length;
    if (mode === 'yield') await tick();
  }
  const ms = performance.now() - t0;
  const after10k = process.memoryUsage().rss;
  for (let k = 0; k < 3; k++) {
    gc();
    await tick();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const afterGc = process.memoryUsage().rss;
  const r: RssResult = {
    baseline,
    after10k,
    afterGc,
    maxRss: process.resourceUsage().maxRSS * 1024,
    ms,
    ...(c.wasmMemoryBytes ? { wasmMemBefore, wasmMemAfter: c.wasmMemoryBytes() } : {}),
  };
  if (sink === -1) console.log(sink);
  emit(r);
}

const BOMB_CASES = ['size-0xFFFFFFF0', 'size-1MiB-tiny-block', 'size-too-small', 'input-3-bytes'] as const;
type BombCase = (typeof BOMB_CASES)[number];

interface BombResult {
  outcome: string;
  ms: number;
  vmHwmBefore: number;
  vmHwmAfter: number;
  vmPeakAfter: number;
  rssAfter: number;
  healthyAfter: boolean;
}

/** A codec still works (and agrees with the reference decoder) after whatever happened before. */
function healthCheck(c: Codec, seed: number, n: number): boolean {
  const logs = genJsonLogs(262144, seed);
  const r = prng(seed);
  for (let i = 0; i < n; i++) {
    const x = logs.subarray(randInt(r, 0, 131072), randInt(r, 131072, 262144));
    const z = c.compress(x);
    if (!u8eq(refDecodeBlock(z.subarray(4), x.length), x)) return false;
    if (!u8eq(c.decompress(z), x)) return false;
  }
  return true;
}

function childBomb(p: PkgId, kase: BombCase): void {
  const c = loadCodec(p);
  const tiny = Buffer.from(c.compress(Buffer.from('hello hello hello hello world')));
  let input: Buffer;
  switch (kase) {
    case 'size-0xFFFFFFF0':
      input = Buffer.from(tiny);
      input.writeUInt32LE(0xfffffff0, 0);
      break;
    case 'size-1MiB-tiny-block':
      input = Buffer.from(tiny);
      input.writeUInt32LE(1048576, 0);
      break;
    case 'size-too-small':
      input = Buffer.from(tiny);
      input.writeUInt32LE(10, 0);
      break;
    case 'input-3-bytes':
      input = Buffer.from([1, 2, 3]);
      break;
  }
  const before = procStatus();
  const t0 = performance.now();
  let outcome: string;
  try {
    const out = c.decompress(input);
    outcome = `returned ${out.length} bytes (declared ${input.length >= 4 ? input.readUInt32LE(0) : 'n/a'})`;
  } catch (e) {
    outcome = `threw ${describeThrown(e)}`;
  }
  const ms = performance.now() - t0;
  const after = procStatus();
  let healthyAfter = false;
  try {
    healthyAfter = healthCheck(c, 99, 50);
  } catch {}
  const r: BombResult = {
    outcome,
    ms,
    vmHwmBefore: before.VmHWM ?? 0,
    vmHwmAfter: after.VmHWM ?? 0,
    vmPeakAfter: after.VmPeak ?? 0,
    rssAfter: process.memoryUsage().rss,
    healthyAfter,
  };
  emit(r);
}

interface FuzzResult {
  n: number;
  outcomes: Record<string, number>;
  maxDeclared: number;
  ms: number;
  healthyAfter: boolean;
  wasmMemAfter?: number;
  rssAfter: number;
}

const FUZZ_LIMIT = 1048576;

function childFuzz(p: PkgId, seed: number, n: number): void {
  const c = loadCodec(p);
  const r = prng(seed);
  const logs = genJsonLogs(131072, seed);
  const bases = [
    { name: 'json64k', plain: logs.subarray(0, 65536) },
    { name: 'json1k', plain: logs.subarray(65536, 66560) },
    { name: 'rand4k', plain: randomBytes(4096) },
  ].map((b) => ({ ...b, block: Buffer.from(c.compress(b.plain)) }));
  const outcomes: Record<string, number> = {};
  const bump = (k: string): void => {
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  };
  let maxDeclared = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) process.stdout.write(`progress ${i}\n`);
    const base = bases[i % bases.length]!;
    let buf = Buffer.from(base.block);
    const body = (): number => randInt(r, 4, buf.length - 1);
    const mutation = randInt(r, 0, 7);
    switch (mutation) {
      case 0: // flip 1-4 bits
        for (let k = randInt(r, 1, 4); k > 0; k--) {
          const at = body();
          buf[at] = buf[at]! ^ (1 << randInt(r, 0, 7));
        }
        break;
      case 1: // 1-8 random bytes
        for (let k = randInt(r, 1, 8); k > 0; k--) buf[body()] = randInt(r, 0, 255);
        break;
      case 2: // truncate
        buf = buf.subarray(0, randInt(r, 4, buf.length - 1));
        break;
      case 3: {
        // overwrite a range with garbage
        const at = body();
        const len = Math.min(randInt(r, 1, 64), buf.length - at);
        randomBytes(len).copy(buf, at);
        break;
      }
      case 4: // declared size anywhere in [0, limit], block untouched
        buf.writeUInt32LE(randInt(r, 0, FUZZ_LIMIT), 0);
        break;
      case 5: // declared size near the real one + a few byte changes
        buf.writeUInt32LE(Math.max(0, Math.min(FUZZ_LIMIT, base.plain.length + randInt(r, -64, 64))), 0);
        for (let k = randInt(r, 1, 4); k > 0; k--) buf[body()] = randInt(r, 0, 255);
        break;
      case 6: {
        // insert or delete 1-16 bytes
        const at = body();
        const len = randInt(r, 1, 16);
        buf =
          r() < 0.5
            ? Buffer.concat([buf.subarray(0, at), randomBytes(len), buf.subarray(at)])
            : Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + len))]);
        break;
      }
      default: {
        // pure garbage body
        buf = Buffer.concat([Buffer.alloc(4), randomBytes(randInt(r, 0, 2048))]);
        buf.writeUInt32LE(randInt(r, 0, FUZZ_LIMIT), 0);
      }
    }
    const declared = buf.readUInt32LE(0);
    if (declared > FUZZ_LIMIT) throw new Error('bug: declared size above limit');
    maxDeclared = Math.max(maxDeclared, declared);
    try {
      const out = c.decompress(buf);
      if (u8eq(out, base.plain)) bump('returned: original data');
      else if (out.length === declared) bump('returned: wrong data, length == declared');
      else bump('returned: length != declared');
    } catch (e) {
      bump(`threw ${errorClass(e)}`);
    }
  }
  const ms = performance.now() - t0;
  let healthyAfter = false;
  try {
    healthyAfter = healthCheck(c, seed + 1, 200);
  } catch {}
  const res: FuzzResult = {
    n,
    outcomes,
    maxDeclared,
    ms,
    healthyAfter,
    rssAfter: process.memoryUsage().rss,
    ...(c.wasmMemoryBytes ? { wasmMemAfter: c.wasmMemoryBytes() } : {}),
  };
  emit(res);
}

// ---------------------------------------------------------------------------------------------
// Parent: orchestration and report

interface ChildRun<T> {
  ok: boolean;
  status: number | null;
  signal: string | null;
  result?: T;
  lastLine: string;
  stderr: string;
}

function spawnChild<T>(args: string[]): ChildRun<T> {
  const self = fileURLToPath(import.meta.url);
  const res = spawnSync(process.execPath, ['--expose-gc', self, '--child', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1048576,
  });
  const lines = (res.stdout ?? '').trim().split('\n');
  const resultLine = lines.find((l) => l.startsWith('RESULT '));
  const run: ChildRun<T> = {
    ok: res.status === 0 && resultLine !== undefined,
    status: res.status,
    signal: res.signal,
    lastLine: lines[lines.length - 1] ?? '',
    stderr: (res.stderr ?? '').trim().split('\n').slice(-3).join(' | '),
  };
  if (resultLine) run.result = JSON.parse(resultLine.slice(7)) as T;
  return run;
}

function crashNote(r: ChildRun<unknown>): string {
  return `CHILD DIED status=${r.status} signal=${r.signal} last="${r.lastLine}" stderr="${r.stderr}"`;
}

function parent(runs: number): void {
  const failures: string[] = [];
  const log = (s = ''): void => {
    process.stdout.write(`${s}\n`);
  };
  log(`# lz4-pick: ${PKG_NAME.napi} vs ${PKG_NAME.wasm}; node ${process.version}; ${runs} runs`);

  const benches: BenchResult[] = [];
  const rss: Record<string, RssResult[]> = {};
  const bombs: Record<string, ChildRun<BombResult>[]> = {};
  const fuzz: Record<PkgId, ChildRun<FuzzResult>[]> = { napi: [], wasm: [] };
  let format: FormatRow[] | undefined;

  for (let run = 1; run <= runs; run++) {
    process.stderr.write(`run ${run}/${runs}: format`);
    const f = spawnChild<FormatRow[]>(['format']);
    if (!f.ok || !f.result) failures.push(`format run ${run}: ${crashNote(f)}`);
    else if (!format) format = f.result;
    process.stderr.write(', bench');
    const b = spawnChild<BenchResult>(['bench']);
    if (!b.ok || !b.result) failures.push(`bench run ${run}: ${crashNote(b)}`);
    else benches.push(b.result);
    for (const p of PKGS) {
      for (const mode of ['tight', 'yield'] as const) {
        process.stderr.write(`, rss ${p} ${mode}`);
        const r = spawnChild<RssResult>(['rss', p, mode]);
        if (!r.ok || !r.result) failures.push(`rss ${p} ${mode} run ${run}: ${crashNote(r)}`);
        else {
          const key = `${p} ${mode}`;
          rss[key] ??= [];
          rss[key].push(r.result);
        }
      }
      process.stderr.write(`, fuzz ${p}`);
      fuzz[p].push(spawnChild<FuzzResult>(['fuzz', p, String(1000 + run), '10000']));
      for (const k of BOMB_CASES) {
        process.stderr.write(`, ${k} ${p}`);
        const key = `${p} ${k}`;
        bombs[key] ??= [];
        bombs[key].push(spawnChild<BombResult>(['bomb', p, k]));
      }
    }
    process.stderr.write('\n');
  }

  // ---- format
  log('\n## Format: u32le(size) ++ raw LZ4 block, cross-decodable');
  for (const row of format ?? []) {
    const ok =
      row.prefixOk.napi &&
      row.prefixOk.wasm &&
      row.refDecodeOk.napi &&
      row.refDecodeOk.wasm &&
      row.napiDecodesWasm &&
      row.wasmDecodesNapi;
    if (!ok) failures.push(`format ${row.input}: ${JSON.stringify(row)}`);
    log(
      `- ${row.input.padEnd(15)} prefix=size:${row.prefixOk.napi && row.prefixOk.wasm} ` +
        `refBlockDecode:${row.refDecodeOk.napi && row.refDecodeOk.wasm} ` +
        `napi(wasm):${row.napiDecodesWasm} wasm(napi):${row.wasmDecodesNapi} ` +
        `identicalBytes:${row.identicalBytes} (${row.compressedLen.napi}/${row.compressedLen.wasm} B)`,
    );
  }

  // ---- throughput table
  log(`\n## Throughput (median of ${runs} runs × median of 5 reps; [min–max] of the per-run medians)`);
  log('MB/s = 1e6 uncompressed bytes per second; 100-byte row is µs per call (lower is better).\n');
  log('| data | op | lz4-napi | lz4-wasm | napi÷wasm | ratio |');
  log('|---|---|---|---|---|---|');
  const fmt = (xs: number[], perCall: boolean): string => {
    const d = perCall ? 2 : 0;
    return `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;
  };
  for (const ds of datasets()) {
    for (const op of ['compress', 'decompress'] as const) {
      const per = (p: PkgId): number[] => benches.map((b) => median(b[ds.key]![p][op]));
      if (benches.length === 0) break;
      const n = per('napi');
      const w = per('wasm');
      const unit = ds.perCall ? ' µs' : '';
      const speedup = ds.perCall ? median(w) / median(n) : median(n) / median(w);
      const ratio = op === 'compress' ? `${(benches[0]![ds.key]!.napi.ratio * 100).toFixed(1)}%` : '';
      log(
        `| ${ds.label} | ${op} | ${fmt(n, ds.perCall)}${unit} | ${fmt(w, ds.perCall)}${unit} | ${speedup.toFixed(2)}× | ${ratio} |`,
      );
    }
  }

  // ---- rss
  log('\n## Allocation: RSS around 10k compressSync of 64 KiB random (fresh process each, MiB)');
  log(
    'tight = one synchronous loop; yield = setImmediate after every call (like per-frame socket callbacks)',
  );
  for (const [key, xs] of Object.entries(rss)) {
    const [p, mode] = key.split(' ') as [PkgId, string];
    const m = (f: (r: RssResult) => number): string => MiB(median(xs.map(f)));
    const wasm =
      xs[0]!.wasmMemAfter !== undefined
        ? `; wasm memory ${m((r) => r.wasmMemBefore!)}→${m((r) => r.wasmMemAfter!)}`
        : '';
    const mbps = (65536 * 10_000) / 1e6 / (median(xs.map((r) => r.ms)) / 1000);
    log(
      `- ${PKG_NAME[p]} ${mode}: baseline ${m((r) => r.baseline)}, after 10k ${m((r) => r.after10k)}, ` +
        `after gc+ticks ${m((r) => r.afterGc)}, peak ${m((r) => r.maxRss)}${wasm}; loop ${mbps.toFixed(0)} MB/s`,
    );
  }

  // ---- bombs
  log('\n## Declared-size / malformed-header cases (fresh process each)');
  for (const [key, rs] of Object.entries(bombs)) {
    const r0 = rs.find((r) => r.result)?.result;
    const died = rs.filter((r) => !r.ok);
    if (died.length) failures.push(`${key}: ${died.map(crashNote).join('; ')}`);
    if (!r0) {
      log(`- ${key}: ${crashNote(rs[0]!)}`);
      continue;
    }
    const msMed = median(rs.filter((r) => r.result).map((r) => r.result!.ms));
    const hwm = median(rs.filter((r) => r.result).map((r) => r.result!.vmHwmAfter - r.result!.vmHwmBefore));
    log(
      `- ${key}: ${r0.outcome}; ${msMed.toFixed(1)} ms; peak RSS +${MiB(hwm)} MiB; ` +
        `usable afterwards: ${rs.every((r) => r.result?.healthyAfter)}; processes survived: ${rs.length - died.length}/${rs.length}`,
    );
  }

  // ---- fuzz
  log(`\n## Corruption fuzz: declared size ≤ ${FUZZ_LIMIT} B, 10,000 per run per package (seeds 1001..)`);
  for (const p of PKGS) {
    const total: Record<string, number> = {};
    let n = 0;
    let healthy = true;
    for (const r of fuzz[p]) {
      if (!r.ok || !r.result) {
        failures.push(`fuzz ${p}: ${crashNote(r)}`);
        log(`- ${PKG_NAME[p]}: ${crashNote(r)}`);
        continue;
      }
      n += r.result.n;
      healthy &&= r.result.healthyAfter;
      for (const [k, v] of Object.entries(r.result.outcomes)) total[k] = (total[k] ?? 0) + v;
    }
    if (!healthy) failures.push(`fuzz ${p}: codec unhealthy after fuzz`);
    const crashes = fuzz[p].filter((r) => !r.ok).length;
    log(`- ${PKG_NAME[p]}: ${n} cases, ${crashes} process crashes, codec healthy afterwards: ${healthy}`);
    for (const [k, v] of Object.entries(total).sort((a, b) => b[1] - a[1]))
      log(`    ${String(v).padStart(6)}  ${k}`);
  }

  log(
    failures.length
      ? `\n## FAILURES\n${failures.map((f) => `- ${f}`).join('\n')}`
      : '\nAll format checks passed; no child process crashed.',
  );
  process.exitCode = failures.length ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  const [mode, a, b, c] = argv.slice(1);
  switch (mode) {
    case 'format':
      childFormat();
      break;
    case 'bench':
      await childBench();
      break;
    case 'rss':
      await childRss(a as PkgId, b as 'tight' | 'yield');
      break;
    case 'bomb':
      childBomb(a as PkgId, b as BombCase);
      break;
    case 'fuzz':
      childFuzz(a as PkgId, Number(b), Number(c));
      break;
    default:
      throw new Error(`unknown child mode ${mode}`);
  }
} else {
  const i = argv.indexOf('--runs');
  parent(i >= 0 ? Number(argv[i + 1]) : 3);
}
