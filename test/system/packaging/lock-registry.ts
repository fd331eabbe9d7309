/**
 * A package registry on loopback made from this repository's package-lock.json, so the packaging
 * tests can run a real `npm install -g TARBALL` with nothing reaching the internet.
 *
 * It answers npm's metadata requests (packuments) for every runtime package in the lock file, with
 * the lock's versions, dependencies, os/cpu/libc and integrity, and serves the tarballs from npm's
 * own cache (`_cacache/content-v2`, addressed by integrity), which `npm ci` filled. A tarball missing
 * from the cache is answered with 404 and a message saying so, never fetched. A request for a
 * package the lock does not hold is a 404 too, so an install that needs one fails.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  engines?: Record<string, string>;
  bin?: Record<string, string>;
  license?: string;
}

/** This package's own tarball, served as if it were published. */
export interface OwnPackage {
  tarball: string;
}

/** A running lock-file registry. */
export interface LockRegistry {
  /** `http://127.0.0.1:PORT/`, for npm's --registry. */
  url: string;
  /** The packages it knows. */
  names: string[];
  /** Every request it answered 404 (a tarball npm did not have cached, an unknown package). */
  misses: string[];
}

/** The file in npm's cache (cacache) holding the content with this integrity, if it is there. */
function cachedContent(cacheDir: string, integrity: string): string | undefined {
  const m = /^(sha\d+)-(.+)$/.exec(integrity.split(/\s+/)[0]!);
  if (!m) return undefined;
  const hex = Buffer.from(m[2]!, 'base64').toString('hex');
  const file = join(
    cacheDir,
    '_cacache',
    'content-v2',
    m[1]!,
    hex.slice(0, 2),
    hex.slice(2, 4),
    hex.slice(4),
  );
  return existsSync(file) ? file : undefined;
}

const LOCK = fileURLToPath(new URL('../../../../package-lock.json', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../../../package.json', import.meta.url));

/** Starts the registry for the test's lifetime; with `own`, `npm install -g minitcptunnel` installs that tarball. */
export async function startLockRegistry(
  t: { after(fn: () => unknown): void },
  cacheDir: string,
  own?: OwnPackage,
): Promise<LockRegistry> {
  const lock = JSON.parse(readFileSync(LOCK, 'utf8')) as { packages: Record<string, LockEntry> };
  const byName = new Map<string, LockEntry[]>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev || entry.link || !entry.version || !entry.integrity) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const list = byName.get(name) ?? [];
    if (!list.some((e) => e.version === entry.version)) list.push(entry);
    byName.set(name, list);
  }
  const misses: string[] = [];
  let base = '';
  const ownTarball = own ? readFileSync(own.tarball) : Buffer.alloc(0);
  const ownIntegrity = `sha512-${createHash('sha512').update(ownTarball).digest('base64')}`;
  const ownManifest = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as {
    name: string;
    version: string;
  } & Record<string, unknown>;
  // What a registry keeps of a manifest: no scripts (prepare/prepack are for building, not installing).
  delete ownManifest.scripts;
  delete ownManifest.devDependencies;
  const server: Server = createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const tar = /^\/-\/tarball\/(.+)\/([^/]+)\.tgz$/.exec(url);
    const integrity = tar ? byName.get(tar[1]!)?.find((e) => e.version === tar[2])?.integrity : undefined;
    const file = integrity === undefined ? undefined : cachedContent(cacheDir, integrity);
    if (file !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(readFileSync(file));
      return;
    }
    if (url.startsWith('/-/')) {
      misses.push(url);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: `${url} is not in the npm cache; run npm ci first (this registry never fetches)`,
        }),
      );
      return;
    }
    const name = url.slice(1);
    if (own && url === `/-/own/${basename(own.tarball)}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(ownTarball);
      return;
    }
    if (own && name === ownManifest.name) {
      const version = ownManifest.version;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name,
          'dist-tags': { latest: version },
          versions: {
            [version]: {
              ...ownManifest,
              dist: { tarball: `${base}-/own/${basename(own.tarball)}`, integrity: ownIntegrity },
            },
          },
        }),
      );
      return;
    }
    const entries = byName.get(name);
    if (entries === undefined) {
      misses.push(url);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `${name} is not a runtime package of package-lock.json` }));
      return;
    }
    const versions: Record<string, unknown> = {};
    for (const e of entries) {
      versions[e.version!] = {
        name,
        version: e.version,
        dependencies: e.dependencies ?? {},
        optionalDependencies: e.optionalDependencies ?? {},
        ...(e.os ? { os: e.os } : {}),
        ...(e.cpu ? { cpu: e.cpu } : {}),
        ...(e.libc ? { libc: e.libc } : {}),
        ...(e.engines ? { engines: e.engines } : {}),
        ...(e.bin ? { bin: e.bin } : {}),
        ...(e.license ? { license: e.license } : {}),
        dist: {
          tarball: `${base}-/tarball/${encodeURIComponent(name)}/${e.version}.tgz`,
          integrity: e.integrity,
        },
      };
    }
    const latest = entries
      .map((e) => e.version!)
      .sort()
      .at(-1)!;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, 'dist-tags': { latest }, versions }));
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: base, names: [...byName.keys()], misses };
}
