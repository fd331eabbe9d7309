/**
 * What a newcomer gets: the package packed from this tree, installed with the README's own
 * `npm install -g minitcptunnel` (from a loopback registry that serves the tarball, see
 * lock-registry.ts) into a fresh prefix, used from a fresh HOME outside the repository. The README's
 * quick start and "A real tunnel" run as written, each on a terminal (script(1)) the way a person
 * types them; "A real tunnel" uses two network namespaces as the two machines, with the example
 * names swapped for real ones (vps.example.com -> the server's address, the example fingerprint ->
 * the server's). Then: the embedding example and its types against the installed package,
 * `npm ci --omit=dev` in a clone, and the native LZ4 binding deleted from an installed copy.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Proc } from '../../../bench/lib/procs.js';
import { readmeBlock } from '../../cli/readme.js';
import { findProgram, NetLab, type Netns } from '../lib/netns.js';
import {
  copyOfWorkingTree,
  type Newcomer,
  newcomer,
  type Packed,
  packWorkingTree,
  REPO,
} from './newcomer.js';

const SCRIPT = findProgram('script');
const CURL = findProgram('curl');
const PKG = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, string | { types: string; default: string }>;
};

let packed: Packed;
let user: Newcomer;
let installOutput: string;
// Cleanups of what before() made run when the whole file is done (after() inside a hook would run
// at the end of that hook), last made first.
const cleanups: Array<() => unknown> = [];
const hooks = { after: (fn: () => unknown) => void cleanups.unshift(fn) };
after(async () => {
  for (const fn of cleanups) await fn();
});

// Every test starts from the same state: the package packed, and installed the README's way.
before(async () => {
  if (!SCRIPT) throw new Error('script(1) is missing: apt-get install -y --no-install-recommends bsdutils');
  if (!CURL) throw new Error('curl is missing: apt-get install -y --no-install-recommends curl');
  packed = await packWorkingTree(hooks);
  user = await newcomer(hooks, packed);
  const [install] = commands(await readmeBlock('quick-start'));
  assert.equal(install, 'npm install -g minitcptunnel');
  const r = await user.run('sh', ['-c', install]);
  installOutput = r.stdout + r.stderr;
});

/** The commands of a README block, one per line, comments and blank lines dropped. */
function commands(block: string): string[] {
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Runs `line` on a pseudo-terminal inside `ns`, as the user; Ctrl-C is `proc.send('\x03')`. */
function onTerminal(ns: Netns, name: string, line: string, cwd: string): Proc {
  return ns.spawn(name, SCRIPT!, ['--quiet', '--return', '--command', line, '/dev/null'], {
    env: user.env,
    cwd,
    stdin: true,
  });
}

/** Ctrl-C on the terminal, then the exit code. */
async function ctrlC(p: Proc): Promise<number | null> {
  p.send('\x03');
  assert.ok(await p.waitExit(15_000), `${p.name} did not stop on Ctrl-C:\n${p.stdout}`);
  return p.exit!.code;
}

test('npm pack: the tarball has the built package, LICENSE, schemas and typed entry points; no screenshots, maps or tests', () => {
  const files = new Set(packed.files);
  for (const f of [
    'package.json',
    'README.md',
    'LICENSE',
    'dist/src/cli/main.js',
    'schema/client-config.schema.json',
    'schema/server-config.schema.json',
    'deploy/systemd/mtt-server.service',
    'deploy/systemd/mtt-client.service',
    'deploy/container/Containerfile',
    'deploy/container/healthcheck.mjs',
  ]) {
    assert.ok(files.has(f), f);
  }
  for (const [entry, target] of Object.entries(PKG.exports)) {
    if (typeof target === 'string') continue;
    assert.ok(files.has(target.default.replace(/^\.\//, '')), `${entry} -> ${target.default}`);
    assert.ok(files.has(target.types.replace(/^\.\//, '')), `${entry} types -> ${target.types}`);
  }
  const unwanted = packed.files.filter(
    (f) =>
      /\.(png|map|tsbuildinfo)$/.test(f) ||
      /^dist\/(test|bench|fuzz)\//.test(f) ||
      (/\.ts$/.test(f) && !f.endsWith('.d.ts')),
  );
  assert.deepEqual(unwanted, []);
  const js = packed.files.filter((f) => f.endsWith('.js'));
  assert.ok(js.length > 20);
  process.stdout.write(
    `# tarball ${packed.size} bytes, ${packed.unpackedSize} unpacked, ${packed.files.length} files\n`,
  );
});

test('the quick start as written: npm install -g minitcptunnel, mtt demo, curl, Ctrl-C', async (t) => {
  const [, demo, ...rest] = commands(await readmeBlock('quick-start'));
  assert.equal(demo, 'mtt demo');
  assert.deepEqual(rest, []);
  assert.match(installOutput, /added \d+ packages?/);
  assert.deepEqual(user.registry.misses, [], 'every tarball came from the cache or the local registry');
  assert.ok(existsSync(join(user.prefix, 'bin', 'mtt')));
  // Only runtime dependencies, so no build tool came with it.
  const deps = readdirSync(join(user.prefix, 'lib/node_modules/minitcptunnel/node_modules'));
  assert.deepEqual(
    deps.filter((d) => /typescript|vite|biome|preact/.test(d)),
    [],
  );
  assert.equal((await user.run('mtt', ['--version'])).stdout, `mtt ${PKG.version}\n`);

  const lab = await NetLab.forTest(t);
  const ns = await lab.namespace('quickstart');
  const p = onTerminal(ns, 'demo', demo, user.home);
  const tryLine = await p.waitForLine((l) => l.includes('Try it:'), 20_000, 'the demo banner');
  // The README promises this exact line (port 8080 is free in a fresh namespace).
  const curl = /curl \S+/.exec(tryLine)![0];
  assert.equal(curl, 'curl http://127.0.0.1:8080/');
  const got = await ns.run('sh', ['-c', curl], { env: user.env });
  assert.match(got.stdout, /^Hello from the LAN service behind mtt! \(request 1, GET \/\)\n$/);
  assert.equal(await ctrlC(p), 0);
  assert.match(p.stdout, /stopped; the service answered 1 request/);
});

test("npx minitcptunnel runs the package's only command", async () => {
  const r = await user.run('npx', ['--yes', 'minitcptunnel', '--version']);
  assert.equal(r.stdout, `mtt ${PKG.version}\n`);
});

test('"A real tunnel" as written, between two machines', async (t) => {
  const lab = await NetLab.forTest(t);
  const server = await lab.namespace('vps');
  const lan = await lab.namespace('lan');
  const link = await lab.link(server, lan, { a: '10.77.0.1/24', b: '10.77.0.2/24' });
  const vps = link.a.address;
  // Two machines, two users: their own HOME each.
  const serverHome = user.folder('server-home');
  const clientHome = user.folder('client-home');
  const asServer = { HOME: serverHome };
  const asClient = { HOME: clientHome };
  const withHome = (home: Record<string, string>) => ({ ...user.env, ...home });

  const [serverCmd] = commands(await readmeBlock('real-tunnel-server'));
  const s = server.spawn('server', SCRIPT!, ['--quiet', '--return', '--command', serverCmd!, '/dev/null'], {
    env: withHome(asServer),
    cwd: serverHome,
    stdin: true,
  });
  const fpLine = await s.waitForLine((l) => /fingerprint: SHA256:/.test(l), 20_000, 'the server banner');
  const fingerprint = /SHA256:[A-Za-z0-9+/]{43}/.exec(fpLine)![0];
  assert.match(s.stdout, /mtt server listening on 0\.0\.0\.0:9000/);

  for (const line of commands(await readmeBlock('real-tunnel-keygen'))) {
    await lan.run('sh', ['-c', line], { env: withHome(asClient), cwd: clientHome });
  }
  // The person copies the public key to the server (scp); then allows it there.
  cpSync(join(clientHome, '.config/mtt/id_ed25519.pub'), join(serverHome, 'id_ed25519.pub'));
  for (const line of commands(await readmeBlock('real-tunnel-allow'))) {
    const r = await server.run('sh', ['-c', line], { env: withHome(asServer), cwd: serverHome });
    assert.match(r.stdout, /^Added SHA256:/);
  }
  await s.waitForLine((l) => /allow-list loaded/.test(l), 10_000, 'the server reloading its allow-list');

  // The LAN service on port 3000.
  const service = lan.spawn('service', process.execPath, [
    '-e',
    "require('node:http').createServer((q, r) => r.end('LAN service on 3000\\n')).listen(3000, '127.0.0.1', () => console.log('ready'))",
  ]);
  await service.waitForLine((l) => l === 'ready', 10_000, 'the service');

  const swap = (line: string) =>
    line
      .replaceAll('vps.example.com', vps)
      .replaceAll('SHA256:F8H98btCFlOvixhMUwSXqH6Ta8hNsTpVoOve04o5vDs', fingerprint);
  const [clientCmd] = commands(await readmeBlock('real-tunnel-client'));
  assert.match(clientCmd!, /vps\.example\.com/);
  const c = lan.spawn(
    'client',
    SCRIPT!,
    ['--quiet', '--return', '--command', swap(clientCmd!), '/dev/null'],
    {
      env: withHome(asClient),
      cwd: clientHome,
      stdin: true,
    },
  );
  await c.waitForLine((l) => /INFO +tunnel active/.test(l), 20_000, 'the tunnel opening');

  const [curlCmd] = commands(await readmeBlock('real-tunnel-curl'));
  const got = await lan.run('sh', ['-c', swap(curlCmd!)], { env: user.env });
  assert.equal(got.stdout, 'LAN service on 3000\n');
  // And from the server's side of the link too (another machine than the LAN box).
  const fromVps = await server.run('curl', ['-sS', `http://${vps}:10080/`]);
  assert.equal(fromVps.stdout, 'LAN service on 3000\n');

  assert.equal(await ctrlC(c), 0);
  assert.equal(await ctrlC(s), 0);
});

test('the README embedding example and the typed entry points, against the installed package', async () => {
  const dir = user.folder('embed');
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'embedder', private: true, type: 'module' }),
  );
  await user.run('npm', ['install', 'minitcptunnel'], { cwd: dir });
  writeFileSync(join(dir, 'example.mjs'), await readmeBlock('embedding-example', 'js'));
  const r = await user.run(process.execPath, ['example.mjs'], { cwd: dir, env: { PUBLIC_PORT: '18080' } });
  assert.equal(r.stdout, 'hello through mtt\n\n');

  // A TypeScript program using every entry point type-checks; a wrong option does not.
  writeFileSync(
    join(dir, 'use.ts'),
    `import { generateIdentity, type MttServer } from 'minitcptunnel';
import { startClient, type ClientSnapshot } from 'minitcptunnel/client';
import { FrameEncoder, PROTOCOL_VERSION } from 'minitcptunnel/protocol';
import { fingerprint } from 'minitcptunnel/identity';
import { startServer } from 'minitcptunnel/server';
const id = generateIdentity('t');
const s: Promise<MttServer> = startServer({ port: 0, identity: id });
const c = startClient({ host: '127.0.0.1', port: 1, identity: id });
const f: string = fingerprint(id.publicRaw);
const w: (s: ClientSnapshot) => boolean = () => true;
const v: number = PROTOCOL_VERSION;
void [s, c, f, w, v, new FrameEncoder()];
`,
  );
  const tsconfig = {
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      strict: true,
      noEmit: true,
      typeRoots: [join(REPO, 'node_modules/@types')],
      types: ['node'],
    },
    files: ['use.ts'],
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  const tsc = join(REPO, 'node_modules/.bin/tsc');
  const ok = await user.run(tsc, ['-p', 'tsconfig.json'], { cwd: dir, allowFail: true });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  writeFileSync(
    join(dir, 'use.ts'),
    `import { startServer } from 'minitcptunnel/server';\nvoid startServer({ port: 'nine' });\n`,
  );
  const bad = await user.run(tsc, ['-p', 'tsconfig.json'], { cwd: dir, allowFail: true });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout, /use\.ts\(2,/);
});

test('npm ci --omit=dev in a clone installs without the build tools and says how to build', async (t) => {
  const clone = copyOfWorkingTree(t, 'omit-dev');
  const r = await user.run('npm', ['ci', '--omit=dev'], { cwd: clone });
  assert.match(r.stderr + r.stdout, /the development dependencies are not installed, so mtt was not built/);
  assert.ok(existsSync(join(clone, 'node_modules/zod')));
  assert.ok(!existsSync(join(clone, 'node_modules/typescript')));
});

test('without the native LZ4 binary: one warning naming the platform, the tunnel works; without any LZ4 the server refuses', async (t) => {
  // A copy of the installed package, with the prebuilt binary deleted as on a platform that has none.
  const prefix = user.folder('no-native');
  cpSync(user.prefix, prefix, { recursive: true, verbatimSymlinks: true });
  const pkgDir = join(prefix, 'lib/node_modules/minitcptunnel');
  const scoped = join(pkgDir, 'node_modules/@antoniomuso');
  const binaries = readdirSync(scoped).filter((d) => d.startsWith('lz4-napi-'));
  assert.ok(binaries.length >= 1, 'the platform binary was installed');
  for (const b of binaries) rmSync(join(scoped, b), { recursive: true });
  const env = { PATH: `${join(prefix, 'bin')}:${user.env.PATH}` };
  const home = user.folder('no-native-home');

  const lab = await NetLab.forTest(t);
  const ns = await lab.namespace('nonative');
  const body = Array.from(
    { length: 20000 },
    (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`,
  ).join('');
  writeFileSync(join(home, 'big.txt'), body);
  const service = ns.spawn('service', process.execPath, [
    '-e',
    `const b = require('node:fs').readFileSync(${JSON.stringify(join(home, 'big.txt'))}); require('node:http').createServer((q, r) => r.end(b)).listen(3000, '127.0.0.1', () => console.log('ready'))`,
  ]);
  await service.waitForLine((l) => l === 'ready', 10_000, 'the service');
  const e = { ...user.env, ...env, HOME: home };
  const mtt = join(prefix, 'bin/mtt');
  await ns.run(mtt, ['keygen', '-f', 'client_key'], { env: e, cwd: home });
  await ns.run(mtt, ['allow', 'client_key.pub'], { env: e, cwd: home });
  const srv = ns.spawn('server', mtt, ['server', '--port', '9000', '--log-format', 'json'], {
    env: e,
    cwd: home,
  });
  await waitStderr(srv, /"msg":"mtt server ready"/);
  const cli = ns.spawn(
    'client',
    mtt,
    [
      'client',
      '--server',
      '127.0.0.1:9000',
      '-i',
      'client_key',
      '-R',
      '10080:127.0.0.1:3000',
      '--log-format',
      'json',
    ],
    { env: e, cwd: home },
  );
  await waitStderr(cli, /"msg":"tunnel active"/);
  const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
  for (let i = 0; i < 3; i++) {
    // To a file: the output kept in memory is capped, the body is 1 MB.
    const out = join(home, `got-${i}`);
    await ns.run('curl', ['-sS', '-o', out, 'http://127.0.0.1:10080/'], { env: e });
    const got = readFileSync(out);
    assert.equal(sha(got), sha(body), `request ${i}: ${got.length} bytes`);
  }
  await cli.stop();
  await srv.stop();
  for (const p of [srv, cli]) {
    const warnings = p.stderr.split('\n').filter((l) => l.includes('native LZ4 binding'));
    assert.equal(warnings.length, 1, `${p.name}:\n${p.stderr}`);
    const w = JSON.parse(warnings[0]!) as { level: string; platform: string; msg: string };
    assert.equal(w.level, 'warn');
    assert.equal(w.platform, `${process.platform}-${process.arch}-glibc`);
    assert.match(w.msg, new RegExp(`cannot load on ${w.platform} .*using the WASM build`));
  }

  rmSync(join(pkgDir, 'node_modules/lz4-wasm-nodejs'), { recursive: true });
  const refused = await ns.run(mtt, ['server', '--port', '9001', '--log-format', 'pretty'], {
    env: e,
    cwd: home,
    allowFail: true,
  });
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /^mtt: the LZ4 package lz4-wasm-nodejs is not installed; reinstall minitcptunnel/m,
  );
});

async function waitStderr(p: Proc, re: RegExp, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(p.stderr)) {
    if (p.exit) throw new Error(`${p.describeExit()}`);
    if (Date.now() > end) throw new Error(`${p.name}: no ${re} within ${ms} ms:\n${p.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
