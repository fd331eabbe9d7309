/**
 * The client library: startClient() runs a client in-process until close() or its AbortSignal;
 * startClientFromConfig() does the same from a config file, saving tunnel changes back to it.
 */
import { existsSync } from 'node:fs';
import { CLIENT_DEFAULTS, type ClientConfig, splitHostPort } from '../config/client-config.js';
import type { LoadedClientConfig } from '../config/client-config-file.js';
import { defaultPaths } from '../config/paths.js';
import {
  fingerprint,
  formatPublicKeyLine,
  generateIdentity,
  type Identity,
  loadIdentity,
  writeIdentityFiles,
} from '../identity/index.js';
import { type Logger, silentLogger } from '../util/logger.js';
import type { ClientSettings, ClientSnapshot, TunnelConfig } from './api.js';
import { ConfigSync, type LiveSettingsPatch } from './config-sync.js';
import { ControlClient } from './control-client.js';
import { type ClientObserver, type WithMetrics, withClientMetrics } from './metrics.js';
import { CONNECT_TIMEOUT_MS, RECONNECT_MIN_MS } from './reconnect.js';
import { StateStore } from './state-store.js';
import { TunnelManager } from './tunnel-manager.js';

/** How to run a client. */
export interface ClientOptions {
  /** Server control address. */
  host: string;
  port: number;
  identity: Identity;
  /** Pinned server key (public key line or SHA256: fingerprint). */
  serverKey?: string;
  /** Trust-on-first-use record, used when serverKey is not set. */
  knownServersPath?: string;
  tunnels?: TunnelConfig[];
  /**
   * Longest heartbeat interval (the server's, from AuthOk, when shorter); default
   * CLIENT_DEFAULTS.heartbeatSeconds, like every other default here that a config file can set.
   */
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** First wait before reconnecting after a failed login (RECONNECT_MIN_MS). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Stop (closed rejects) on the first failure instead of retrying: for systemd's Restart=. */
  exitOnFailure?: boolean;
  /** Data channels opened ahead of need. */
  dataChannelPool?: number;
  /** Longest wait for a TCP connection to the server (CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Called after each tunnel change (the config-file client saves there). */
  onTunnelsChanged?: (tunnels: TunnelConfig[]) => void;
  /** Timings for the metrics (see withClientMetrics). */
  observer?: ClientObserver;
  log?: Logger;
  signal?: AbortSignal;
}

/** A running client. */
export interface MttClient {
  readonly state: StateStore;
  readonly tunnels: TunnelManager;
  /** Resolves when the client stopped; rejects (ClientFailedError) on failure with exitOnFailure. */
  readonly closed: Promise<void>;
  /**
   * Stops the client. Established connections go on until their peers end them; with
   * `dropConnections` every one is reset and every data channel closed, and the promise resolves
   * when all their sockets are closed (a GUI's Quit).
   */
  close(opts?: { dropConnections?: boolean }): Promise<void>;
  /** Skips the current wait before the next connection attempt. */
  reconnectNow(): void;
  /** Closes (true) or reopens (false) every tunnel on the server without touching the config. */
  pause(paused: boolean): void;
  /** Applies new settings live; a changed server or server key reconnects. */
  updateSettings(settings: ClientSettings): void;
  /** Resolves with the first snapshot that satisfies `test` (tests, CLI); rejects after timeoutMs. */
  waitFor(test: (s: ClientSnapshot) => boolean, timeoutMs?: number): Promise<ClientSnapshot>;
}

/** Starts a client. It connects (and reconnects) in the background; watch `state`. */
export function startClient(opts: ClientOptions): MttClient {
  const log = opts.log ?? silentLogger;
  const tunnels = new TunnelManager(opts.tunnels ?? []);
  const state = new StateStore({
    identity: {
      publicKeyLine: formatPublicKeyLine(opts.identity.publicRaw, opts.identity.comment),
      fingerprint: fingerprint(opts.identity.publicRaw),
    },
    serverAddress: `${opts.host}:${opts.port}`,
    tunnels: () => tunnels.views(),
  });
  const control = new ControlClient({
    host: opts.host,
    port: opts.port,
    identity: opts.identity,
    ...(opts.serverKey ? { serverKey: opts.serverKey } : {}),
    ...(opts.knownServersPath ? { knownServersPath: opts.knownServersPath } : {}),
    // One defaults object for the library, the config file and the CLI (CLIENT_DEFAULTS).
    heartbeatMs: opts.heartbeatMs ?? CLIENT_DEFAULTS.heartbeatSeconds * 1000,
    heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? CLIENT_DEFAULTS.heartbeatTimeoutSeconds * 1000,
    reconnectMinMs: opts.reconnectMinMs ?? RECONNECT_MIN_MS,
    reconnectMaxMs: opts.reconnectMaxMs ?? CLIENT_DEFAULTS.reconnectMaxSeconds * 1000,
    exitOnFailure: opts.exitOnFailure ?? false,
    dataChannelPool: opts.dataChannelPool ?? CLIENT_DEFAULTS.dataChannelPool,
    connectTimeoutMs: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    tunnels,
    state,
    onTunnelsChanged: () => opts.onTunnelsChanged?.(tunnels.list()),
    ...(opts.observer ? { observer: opts.observer } : {}),
    log,
  });
  const closed = control.run();
  closed.catch(() => {});
  const close = async (o: { dropConnections?: boolean } = {}) => {
    await control.stop(o);
    await closed.catch(() => {});
  };
  opts.signal?.addEventListener('abort', () => void close(), { once: true });
  if (opts.signal?.aborted) void close();

  const waitFor = (test: (s: ClientSnapshot) => boolean, timeoutMs = 10_000) =>
    new Promise<ClientSnapshot>((resolve, reject) => {
      const check = () => {
        const s = state.snapshot();
        if (test(s)) {
          cleanup();
          resolve(s);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const s = state.snapshot();
        const tunnels = s.tunnels.map((t) => `${t.name} ${t.status}${t.error ? ` (${t.error})` : ''}`);
        reject(
          new Error(
            `state did not match within ${timeoutMs} ms: ${JSON.stringify(s.connection)}; tunnels: ${JSON.stringify(tunnels)}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        state.off('change', check);
      };
      state.on('change', check);
      check();
    });

  return {
    state,
    tunnels,
    closed,
    close,
    waitFor,
    reconnectNow: () => control.reconnectNow(),
    pause: (paused) => control.pause(paused),
    updateSettings: (settings) => control.updateSettings(settings),
  };
}

/** Options for startClientFromConfig. */
export interface ClientFromConfigOptions {
  exitOnFailure?: boolean;
  /** Serve metrics on "ADDR:PORT" (overrides the config's `metrics`). */
  metrics?: string;
  log?: Logger;
  signal?: AbortSignal;
}

/** Loads the identity named by a config, creating the default one on first run. */
export async function loadClientIdentity(
  loaded: Pick<LoadedClientConfig, 'identityPath'> & Partial<LoadedClientConfig>,
  log: Logger,
): Promise<{ identity: Identity; path: string; created: boolean }> {
  if (loaded.identityPath)
    return { identity: await loadIdentity(loaded.identityPath), path: loaded.identityPath, created: false };
  const path = defaultPaths.identity();
  if (existsSync(path)) return { identity: await loadIdentity(path), path, created: false };
  const identity = generateIdentity();
  await writeIdentityFiles(path, identity);
  log.info('created a client identity key', { path, fingerprint: fingerprint(identity.publicRaw) });
  return { identity, path, created: true };
}

/**
 * The ClientOptions a config's fields give (the server split into host and port, seconds in ms),
 * for the config-file client and the one-line client alike; the caller adds how it runs.
 */
export function optionsFromConfig(
  cfg: ClientConfig,
  identity: Identity,
  knownServersPath: string,
): ClientOptions {
  const { host, port } = splitHostPort(cfg.server);
  return {
    host,
    port,
    identity,
    ...(cfg.serverKey ? { serverKey: cfg.serverKey } : {}),
    knownServersPath,
    tunnels: cfg.tunnels,
    heartbeatMs: cfg.heartbeatSeconds * 1000,
    heartbeatTimeoutMs: cfg.heartbeatTimeoutSeconds * 1000,
    reconnectMaxMs: cfg.reconnectMaxSeconds * 1000,
    dataChannelPool: cfg.dataChannelPool,
  };
}

/**
 * Starts a client from a config file and keeps the two in step (see ConfigSync): edits of the file
 * apply live, and changes made at run time (dashboard, tray) are saved back, only the fields that
 * changed, never over a newer file.
 */
export async function startClientFromConfig(
  configPath: string,
  opts: ClientFromConfigOptions = {},
): Promise<MttClient & WithMetrics & { config: LoadedClientConfig; identityPath: string; sync: ConfigSync }> {
  const log = opts.log ?? silentLogger;
  const sync = await ConfigSync.open(configPath, { log });
  const loaded = sync.current;
  const { identity, path: identityPath } = await loadClientIdentity(loaded, log);
  const cfg = loaded.config;
  const client = await withClientMetrics(opts.metrics ?? cfg.metrics, (observer) =>
    startClient({
      ...optionsFromConfig(cfg, identity, loaded.knownServersPath ?? defaultPaths.knownServers()),
      ...(observer ? { observer } : {}),
      exitOnFailure: opts.exitOnFailure ?? false,
      onTunnelsChanged: (tunnels) => sync.tunnelsChanged(tunnels),
      log,
      ...(opts.signal ? { signal: opts.signal } : {}),
    }),
  );
  sync.attach({
    tunnels: client.tunnels,
    updateSettings: (patch: LiveSettingsPatch) => client.updateSettings(patch),
    event: (level, message, tunnel) => client.state.event(level, message, tunnel),
  });
  void client.closed.finally(() => sync.close()).catch(() => {});
  const close = async (o: { dropConnections?: boolean } = {}) => {
    await client.close(o);
    await sync.close();
  };
  return { ...client, close, config: loaded, identityPath, sync };
}
