/**
 * deploy/container/Containerfile, built for real: a Debian base made here with debootstrap (no
 * registry image can be pulled on our machines) plus the Node.js running these tests and npm, the
 * package installed in it from the packed tarball (dependencies from the loopback registry of
 * lock-registry.ts), then the image run: the demo, and the server with its health check and a
 * client from the host tunnelling through it. Nothing is cached between runs; the figures (time
 * for debootstrap, import and build; image size) are printed.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { spawnMtt } from '../../cli/run-mtt.js';
import { freePort } from '../../e2e/harness.js';
import { findProgram } from '../lib/netns.js';
import { startLockRegistry } from './lock-registry.js';
import { packWorkingTree, REPO } from './newcomer.js';

const TOOLS: Record<string, string> = { debootstrap: 'debootstrap', podman: 'podman', runc: 'runc' };
const MIRROR = process.env.MTT_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

function sh(cmd: string, args: string[], timeoutMs = 600_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err)
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`,
          ),
        );
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * How containers run on our machines: crun (podman's default) refuses their hybrid cgroup v1/v2
 * set-up, so runc; and the open-file limit cannot be raised (20,000), so the limits are the
 * process's own instead of podman's defaults. Builds use chroot isolation for the same reasons.
 */
function runOptions(): string[] {
  const hard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return ['--runtime', 'runc', '--ulimit', `nofile=${hard}:${hard}`, '--ulimit', 'nproc=4096:4096'];
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const r = await f();
  process.stdout.write(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return r;
}

/** Polls `podman logs` until `re` shows (containers' output is not a pipe we hold). */
async function waitLogs(name: string, re: RegExp, ms = 30_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const { stdout, stderr } = await sh('podman', ['logs', name]);
    if (re.test(stdout + stderr)) return stdout + stderr;
    if (Date.now() > end)
      throw new Error(`container ${name}: no ${re} within ${ms} ms:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('the Containerfile: built from the tarball on a debootstrap base, non-root, runs the demo and a healthy server', async (t) => {
  const missing = Object.keys(TOOLS).filter((p) => !findProgram(p));
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(', ')} not found: apt-get install -y --no-install-recommends ${missing.map((m) => TOOLS[m]).join(' ')}`,
    );
  }
  const id = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const baseTag = `localhost/mtt-pkg-base-${id}`;
  const appTag = `localhost/mtt-pkg-${id}`;
  const containers: string[] = [];
  const work = mkdtempSync(join(tmpdir(), `mtt-pkg-${id}-container-`));
  t.after(async () => {
    for (const c of containers) await sh('podman', ['rm', '-f', '-v', c]).catch(() => {});
    await sh('podman', ['rmi', '-f', appTag, baseTag]).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  });

  const packed = await packWorkingTree(t);
  const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  const registry = await startLockRegistry(t, npmCache);

  // The base: Debian's minimal system, the Node.js running this test, and npm, as the node image has.
  const root = join(work, 'rootfs');
  await timed('debootstrap --variant=minbase bookworm', () =>
    sh('debootstrap', ['--variant=minbase', 'bookworm', root, MIRROR], 900_000),
  );
  // What a slim image leaves out: package lists and caches, documentation, translations.
  for (const d of [
    'var/cache/apt',
    'var/lib/apt/lists',
    'usr/share/doc',
    'usr/share/man',
    'usr/share/locale',
  ]) {
    rmSync(join(root, d), { recursive: true, force: true });
    mkdirSync(join(root, d), { recursive: true });
  }
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  copyFileSync(process.execPath, join(root, 'usr/local/bin/node'));
  chmodSync(join(root, 'usr/local/bin/node'), 0o755);
  // npm itself: the package behind the `npm` command these tests run (`npm root -g` would answer for
  // the Node binary's own prefix, which for Node from the registry holds no npm).
  const npmPackage = dirname(dirname(realpathSync(findProgram('npm') ?? 'npm')));
  cpSync(npmPackage, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
  await timed('tar | podman import (base image)', () =>
    sh('sh', ['-c', 'tar -C "$1" -c . | podman import - "$2"', 'sh', root, baseTag]),
  );
  rmSync(root, { recursive: true, force: true });

  const context = join(work, 'context');
  mkdirSync(context);
  copyFileSync(packed.tarball, join(context, basename(packed.tarball)));
  await timed('podman build', () =>
    sh('podman', [
      'build',
      '--isolation',
      'chroot',
      '--format',
      'docker',
      '--network',
      'host',
      '--build-arg',
      `BASE=${baseTag}`,
      '--build-arg',
      `NPM_REGISTRY=${registry.url}`,
      '-f',
      join(REPO, 'deploy/container/Containerfile'),
      '-t',
      appTag,
      context,
    ]),
  );
  assert.deepEqual(registry.misses, [], 'every dependency came from the loopback registry');
  const size = Number(
    (await sh('podman', ['image', 'inspect', appTag, '--format', '{{.Size}}'])).stdout.trim(),
  );
  process.stdout.write(
    `# image size: ${(size / 1048576).toFixed(0)} MiB (Debian minbase + Node ${process.version} + npm + mtt)\n`,
  );

  // The demo, as the README's quick start, inside the image.
  const demoPort = await freePort();
  const demo = `mtt-pkg-demo-${id}`;
  containers.push(demo);
  const run = runOptions();
  await sh('podman', [
    'run',
    '-d',
    ...run,
    '--name',
    demo,
    '--network',
    'host',
    appTag,
    'demo',
    '--public-port',
    String(demoPort),
  ]);
  const logs = await waitLogs(demo, /"msg":"mtt demo is running"/);
  assert.doesNotMatch(logs, /^[^{]/m, 'not on a terminal, every line is JSON');
  const res = await fetch(`http://127.0.0.1:${demoPort}/`);
  assert.match(await res.text(), /^Hello from the LAN service behind mtt!/);
  const uid = await sh('podman', [
    'exec',
    demo,
    'node',
    '-e',
    'process.stdout.write(String(process.getuid()))',
  ]);
  assert.equal(uid.stdout, '10001', 'the container runs as a non-root user');
  await sh('podman', ['stop', '-t', '10', demo]);
  const exit = (await sh('podman', ['inspect', demo, '--format', '{{.State.ExitCode}}'])).stdout.trim();
  assert.equal(exit, '0', 'SIGTERM stops the demo cleanly');
  assert.match(await waitLogs(demo, /"msg":"mtt demo stopped"/), /"requests":1/);

  // The server from its default command, settings and allow-list mounted as a folder.
  const conf = join(work, 'etc-mtt');
  mkdirSync(conf);
  const controlPort = await freePort();
  const publicPort = await freePort();
  const metricsPort = await freePort();
  writeFileSync(
    join(conf, 'server.json'),
    JSON.stringify({
      port: controlPort,
      host: '127.0.0.1',
      publicHost: '127.0.0.1',
      allowPorts: String(publicPort),
      allowedKeys: '/etc/mtt/allowed_keys',
      // The health check asks /healthz here.
      metrics: `127.0.0.1:${metricsPort}`,
    }),
  );
  const keys = join(work, 'client');
  mkdirSync(keys);
  execFileSync(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'keygen', '-f', join(keys, 'key')]);
  execFileSync(process.execPath, [
    join(REPO, 'dist/src/cli/main.js'),
    'allow',
    join(keys, 'key.pub'),
    '--allowed-keys',
    join(conf, 'allowed_keys'),
  ]);
  chmodSync(join(conf, 'allowed_keys'), 0o644);
  const srv = `mtt-pkg-server-${id}`;
  containers.push(srv);
  await sh('podman', [
    'run',
    '-d',
    ...run,
    '--name',
    srv,
    '--network',
    'host',
    '-v',
    `${conf}:/etc/mtt:ro`,
    appTag,
  ]);
  const ready = await waitLogs(srv, /"msg":"mtt server ready"/);
  const fingerprint = /"fingerprint":"(SHA256:[A-Za-z0-9+/]{43})"/.exec(ready)![1]!;
  await sh('podman', ['healthcheck', 'run', srv]);
  assert.equal(
    (await sh('podman', ['inspect', srv, '--format', '{{.State.Health.Status}}'])).stdout.trim(),
    'healthy',
  );
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200, 'a key may log in');

  const service = createServer((_req, r) => r.end('through the container\n'));
  service.listen(0, '127.0.0.1');
  await once(service, 'listening');
  t.after(() => service.close());
  const client = spawnMtt(
    t,
    [
      'client',
      '--server',
      `127.0.0.1:${controlPort}`,
      '--server-key',
      fingerprint,
      '-i',
      join(keys, 'key'),
      '-R',
      `${publicPort}:127.0.0.1:${(service.address() as AddressInfo).port}`,
    ],
    { env: { ...process.env, MTT_CONFIG_DIR: keys } },
  );
  await client.waitFor('"msg":"tunnel active"', 20_000);
  assert.equal(await (await fetch(`http://127.0.0.1:${publicPort}/`)).text(), 'through the container\n');
  assert.equal(await client.stop(), 0);

  // The same check against ports nobody listens on fails, with a metrics listener (/healthz) and
  // without (the control port): it tests the server, not itself.
  for (const [name, cfg] of [
    [
      'etc-closed-metrics',
      { port: await freePort(), host: '127.0.0.1', metrics: `127.0.0.1:${await freePort()}` },
    ],
    ['etc-closed', { port: await freePort(), host: '127.0.0.1' }],
  ] as const) {
    const closed = join(work, name);
    mkdirSync(closed);
    writeFileSync(join(closed, 'server.json'), JSON.stringify(cfg));
    const check = '/usr/local/lib/node_modules/minitcptunnel/deploy/container/healthcheck.mjs';
    await assert.rejects(
      sh('podman', [
        'run',
        '--rm',
        ...run,
        '--network',
        'host',
        '-v',
        `${closed}:/etc/mtt:ro`,
        '--entrypoint',
        'node',
        appTag,
        check,
      ]),
      /failed/,
      name,
    );
  }
});
