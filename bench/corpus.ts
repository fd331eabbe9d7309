/** A deterministic corpus of JSON log lines: the "compressible" payload of workload 2. */

const LEVELS = ['info', 'info', 'info', 'info', 'debug', 'warn', 'error'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const ROUTES = [
  '/api/v1/orders',
  '/api/v1/users',
  '/api/v1/cart',
  '/api/v2/search',
  '/healthz',
  '/static/app.js',
];
const STATUS = [200, 200, 200, 200, 201, 204, 304, 400, 404, 500];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'curl/8.5.0',
  'okhttp/4.12.0',
];
const MESSAGES = [
  'request completed',
  'cache miss',
  'upstream slow',
  'retrying upstream',
  'validation failed',
];

/** mulberry32: a tiny seeded PRNG, so every run pushes the same bytes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `bytes` (rounded up to whole lines) of newline-separated JSON log records. */
export function jsonLogCorpus(bytes: number, seed = 1): Buffer {
  const rnd = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const hex = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
    return s;
  };
  const lines: string[] = [];
  let size = 0;
  let t = Date.UTC(2026, 10, 25, 8, 0, 0);
  while (size < bytes) {
    t += Math.floor(rnd() * 40);
    const route = pick(ROUTES);
    const rec = {
      ts: new Date(t).toISOString(),
      level: pick(LEVELS),
      service: 'api-gateway',
      host: `web-${1 + Math.floor(rnd() * 8)}`,
      pid: 4100 + Math.floor(rnd() * 16),
      req_id: hex(16),
      method: pick(METHODS),
      path: route.startsWith('/api') ? `${route}/${Math.floor(rnd() * 100000)}` : route,
      status: pick(STATUS),
      dur_ms: Math.round(rnd() * 25000) / 100,
      bytes: Math.floor(rnd() * 20000),
      client_ip: `10.${Math.floor(rnd() * 4)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
      ua: pick(AGENTS),
      msg: pick(MESSAGES),
    };
    const line = `${JSON.stringify(rec)}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''), 'utf8');
}
