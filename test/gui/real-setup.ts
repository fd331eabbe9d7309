/**
 * A real server, a client config file pointing at it, and a real local HTTP service, all on loopback:
 * what the GUI's end-to-end tests drive.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { guiCommand } from '../../src/gui/index.js';
import {
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  parseAllowList,
  writeIdentityFiles,
} from '../../src/identity/index.js';
import { type MttServer, startServer } from '../../src/server/index.js';
import type { Logger } from '../../src/util/logger.js';

/** What the body of every answer from the local service says. */
export const SERVICE_BODY = 'hello from the LAN service\n';

export interface RealSetup {
  dir: string;
  server: MttServer;
  serverFingerprint: string;
  clientPublicKeyLine: string;
  configPath: string;
  /** Starts the server again on its port after `server.close()` (same key; the client allowed or not). */
  restartServer(opts?: { clientAllowed?: boolean }): Promise<MttServer>;
  /** The local HTTP service (the tunnels' target). */
  service: HttpServer & { port: number };
}

export { freePort } from '../e2e/harness.js';

/** Starts everything; it is all closed and removed after the test. */
export async function startRealSetup(
  t: TestContext,
  tunnels: unknown[] = [],
  opts: { clientAllowed?: boolean; keyOptions?: string } = {},
): Promise<RealSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-gui-e2e-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const serverIdentity = generateIdentity('test-server');
  const clientIdentity = generateIdentity('test-client');
  await writeIdentityFiles(join(dir, 'id_ed25519'), clientIdentity);
  const clientPublicKeyLine = formatPublicKeyLine(clientIdentity.publicRaw, 'test-client');
  const serverOptions = (port: number, clientAllowed = opts.clientAllowed) => ({
    host: '127.0.0.1',
    port,
    identity: serverIdentity,
    // A client left off the allow-list is refused with unknown_key.
    allowList:
      clientAllowed === false
        ? parseAllowList(formatPublicKeyLine(generateIdentity('someone-else').publicRaw, 'other'), 'test')
        : parseAllowList(`${opts.keyOptions ? `${opts.keyOptions} ` : ''}${clientPublicKeyLine}`, 'test'),
    publicHost: '127.0.0.1',
    allowPorts: [{ low: 1024, high: 65535 }],
  });
  const server = await startServer(serverOptions(0));
  t.after(() => server.close());
  const restartServer = async (o: { clientAllowed?: boolean } = {}) => {
    const again = await startServer(
      serverOptions(server.address.port, o.clientAllowed ?? opts.clientAllowed),
    );
    t.after(() => again.close());
    return again;
  };

  const service = createHttpServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(SERVICE_BODY) });
    res.end(SERVICE_BODY);
  });
  service.keepAliveTimeout = 100;
  service.listen({ host: '127.0.0.1', port: 0 });
  await once(service, 'listening');
  t.after(() => {
    service.closeAllConnections();
    service.close();
  });

  const configPath = join(dir, 'client.json');
  await writeFile(
    configPath,
    `${JSON.stringify(
      {
        server: `127.0.0.1:${server.address.port}`,
        serverKey: formatPublicKeyLine(serverIdentity.publicRaw),
        identity: 'id_ed25519',
        knownServers: 'known_servers',
        reconnectMaxSeconds: 1,
        tunnels,
      },
      null,
      2,
    )}\n`,
    { mode: 0o600 },
  );
  return {
    dir,
    server,
    serverFingerprint: fingerprint(serverIdentity.publicRaw),
    clientPublicKeyLine,
    configPath,
    restartServer,
    service: Object.assign(service, { port: (service.address() as AddressInfo).port }),
  };
}

/**
 * `mtt gui --no-window` without a tray on the setup's config file, in this process; resolves with the
 * login URL it prints. It is stopped after the test, and then has to return `exitCode` when given.
 */
export async function startHeadlessGui(
  t: TestContext,
  setup: RealSetup,
  log: Logger,
  opts: { exitCode?: number } = {},
): Promise<string> {
  const ac = new AbortController();
  let gotUrl: (line: string) => void = () => {};
  const printed = new Promise<string>((r) => {
    gotUrl = r;
  });
  const running = guiCommand({
    configPath: setup.configPath,
    noWindow: true,
    tray: false,
    signal: ac.signal,
    print: (line) => gotUrl(line),
    log,
  });
  t.after(async () => {
    ac.abort();
    const code = await running;
    if (opts.exitCode !== undefined) assert.equal(code, opts.exitCode, 'the exit code of mtt gui');
  });
  return /Dashboard: (\S+)/.exec(await printed)![1]!;
}
