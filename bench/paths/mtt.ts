/**
 * MiniTCPTunnel itself, driven through its CLI (dist/src/cli/main.js) exactly as a user would:
 * keygen for both identities, a server that allows the client's key, a client with one tunnel.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyFolder } from '../lib/keys.js';
import { freePort, LOOPBACK, waitReady } from '../lib/net.js';
import { descendants, isAlive } from '../lib/procs.js';
import { targetOn } from '../lib/topology.js';
import { type BenchPath, onFreshPorts, PathUnavailable } from './types.js';

/** The ports the bench lets the client open (the server's --allow-ports). */
export const MTT_ALLOWED_PORTS: [number, number] = [10000, 60000];

/** The built CLI, relative to this file's place in dist/bench/paths/. */
export const MTT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Both identities (`mtt keygen`) and the allow-list, made once per bench. */
const mttKeys = keyFolder('mtt', async (dir, scope) => {
  await Promise.all(
    ['host_key', 'client_key'].map(async (key) => {
      const r = await scope.run('mtt-keygen', process.execPath, [MTT_CLI, 'keygen', '-f', `${dir}/${key}`], {
        timeoutMs: 20_000,
      });
      if (r.code !== 0 || !existsSync(`${dir}/${key}.pub`)) {
        throw new PathUnavailable(
          `mtt keygen failed (exit ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim().slice(-400)}`,
        );
      }
    }),
  );
  const clientPub = readFileSync(`${dir}/client_key.pub`, 'utf8').trim();
  writeFileSync(`${dir}/allowed_keys`, `${clientPub}\n`, { mode: 0o600 });
});

/**
 * MiniTCPTunnel's server (visitor side, control port on the topology's server address, public port
 * on 127.0.0.1) and client (service side, dialling the service on 127.0.0.1) as two processes; the
 * tunnel's `compress` setting as given (the default when absent).
 */
function mttPathWith(name: string, label: string, compress?: boolean | 'zstd'): BenchPath {
  return {
    name,
    label,
    needs: [],
    async start(localPort, opts) {
      const { scope, topo } = opts;
      if (!existsSync(MTT_CLI)) {
        throw new PathUnavailable(
          `the mtt CLI is not built: ${path.relative(process.cwd(), MTT_CLI) || MTT_CLI} is missing (npm run build)`,
        );
      }
      const started = Date.now();
      const left = () => Math.max(1000, opts.timeoutMs - (Date.now() - started));
      const keys = await mttKeys();
      const dir = mkdtempSync(path.join(os.tmpdir(), 'mtt-bench-mtt-'));
      scope.deferRemove(dir);
      const node = process.execPath;
      const hostPub = readFileSync(`${keys}/host_key.pub`, 'utf8').trim();

      const env = { ...process.env, NO_COLOR: '1' };
      // A port picked free may be taken before the server listens there: then again on fresh ones.
      const { server, client, remotePort } = await onFreshPorts(3, async () => {
        const serverPort = await freePort();
        const remotePort = await freePort(); // inside MTT_ALLOWED_PORTS
        const config = {
          server: `${topo.serverAddr}:${serverPort}`,
          serverKey: hostPub,
          identity: `${keys}/client_key`,
          tunnels: [
            {
              name: 'bench',
              remotePort,
              localHost: LOOPBACK,
              localPort,
              ...(compress !== undefined ? { compress } : {}),
            },
          ],
        };
        writeFileSync(`${dir}/client.json`, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
        const server = scope.spawn(
          'mtt-server',
          node,
          [
            MTT_CLI,
            'server',
            '--port',
            String(serverPort),
            '--host',
            topo.serverAddr,
            '--host-key',
            `${keys}/host_key`,
            '--allowed-keys',
            `${keys}/allowed_keys`,
            '--allow-ports',
            `${MTT_ALLOWED_PORTS[0]}-${MTT_ALLOWED_PORTS[1]}`,
            '--public-host',
            LOOPBACK,
          ],
          { nofile: opts.nofile, env, netns: topo.netns.visitor },
        );
        const client = scope.spawn(
          'mtt-client',
          node,
          [MTT_CLI, 'client', '--config', `${dir}/client.json`],
          {
            nofile: opts.nofile,
            env,
            netns: topo.netns.service,
          },
        );
        try {
          await waitReady(targetOn(topo, 'visitor', LOOPBACK, remotePort), opts.ready, {
            timeoutMs: left(),
            what: 'mtt tunnel',
            failFast: () => {
              if (server.exit) return server.describeExit();
              if (client.exit) return client.describeExit();
              // The server refuses the tunnel (and the client retries) when its port is taken.
              const refused = server.stderr.split('\n').find((l) => /port_in_use/.test(l));
              return refused ? `mtt server: ${refused.trim().slice(0, 300)}` : undefined;
            },
          });
        } catch (err) {
          await client.stop(2000);
          await server.stop(2000);
          throw err;
        }
        return { server, client, remotePort };
      });

      const pids = () =>
        [server, client]
          .filter((p) => !p.exit)
          .flatMap((p) => [p.pid, ...descendants(p.pid)])
          .filter(isAlive);
      return {
        publicHost: LOOPBACK,
        publicPort: remotePort,
        pids,
        async stop() {
          await client.stop(2000);
          await server.stop(2000);
        },
      };
    },
  };
}

/** mtt as a user runs it: the default compression (LZ4 while the link backs up). */
export const mttPath: BenchPath = mttPathWith('mtt', 'mtt');

/**
 * mtt with the tunnel's optional slow-link codec (`compress: "zstd"`), run only when named in
 * `--paths` (it is not the default, so the tables compare the default).
 */
export const mttZstdPath: BenchPath = mttPathWith('mtt-zstd', 'mtt, compress: "zstd"', 'zstd');
