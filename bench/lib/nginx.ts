/**
 * nginx (Debian's package) as an HTTP target: a private instance in a temp folder with its own
 * config, pid file and logs, one worker, answering every request with a 3-byte body (as the Node
 * HTTP helper does). Nothing of the system's nginx setup is read or changed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privateNginxConfig } from '../../test/lib/nginx-config.js';
import { freePort, httpProbe, waitReady } from './net.js';
import type { Proc, Scope } from './procs.js';
import { isRoot } from './tools.js';
import { type Topology, targetOn } from './topology.js';

function config(dir: string, host: string, port: number): string {
  return privateNginxConfig(dir, {
    top: ['# mtt bench: a private nginx', ...(isRoot() ? ['user www-data;'] : [])],
    workerConnections: 8192,
    http: ['access_log off;'],
    listen: `${host}:${port} backlog=4096`,
    answer: 'ok',
  });
}

/** Starts nginx on the service side and waits until it answers; it ends with `scope`. */
export async function startNginx(
  scope: Scope,
  nginx: string,
  topo: Topology,
): Promise<{ proc: Proc; port: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mtt-bench-nginx-'));
  scope.deferRemove(dir);
  const port = await freePort();
  writeFileSync(`${dir}/nginx.conf`, config(dir, topo.serviceBind, port));
  const proc = scope.spawn('nginx', nginx, ['-p', dir, '-c', `${dir}/nginx.conf`], {
    netns: topo.netns.service,
    nofile: 65536,
  });
  const host = topo.serviceBind === '0.0.0.0' ? '127.0.0.1' : topo.serviceBind;
  await waitReady(targetOn(topo, 'service', host, port), httpProbe, {
    timeoutMs: 15_000,
    what: 'nginx',
    failFast: () => (proc.exit ? proc.describeExit() : undefined),
  });
  return { proc, port };
}
