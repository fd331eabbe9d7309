/**
 * TunnelManager: the client's tunnels, from the config and changed at run time (GUI, library). Each
 * change is validated, applied to the live session and, when the client runs from a config file,
 * saved to it atomically.
 */

import { parseTunnel, type TunnelEntry } from '../config/client-config.js';
import { ConfigError } from '../config/config-error.js';
import { zstdAvailable, zstdUnavailableMessage } from '../protocol/compression.js';
import type { TunnelConfig, TunnelManagerLike, TunnelView } from './api.js';
import type { TunnelRuntime } from './state-store.js';

/** A tunnel with its wire id and live state. */
export interface ManagedTunnel {
  config: TunnelEntry;
  /** Wire id of the tunnel's current OpenTunnel; a new one per (re)open. */
  tunnelId: number;
  runtime: TunnelRuntime;
  /** Refusals in a row, and the timer of the next attempt (the running client keeps these). */
  retry: { attempt: number; timer?: NodeJS.Timeout };
  /** The server granted zstd to the current open (TunnelStatus's ZSTD): its frames may use codec 2. */
  zstd: boolean;
  /** The "server cannot use zstd" warning was logged for this tunnel (it is said once). */
  warnedNoZstd?: boolean;
}

/**
 * parseTunnel, and what only the running client can check: `compress: "zstd"` needs a Node with
 * zstd. `field` is where the error points (the tunnel's field, or its place in the config file).
 */
function parseClientTunnel(input: unknown, field = 'compress'): TunnelEntry {
  const config = parseTunnel(input);
  if (config.compress === 'zstd' && !zstdAvailable()) {
    throw new ConfigError(zstdUnavailableMessage(), field);
  }
  return config;
}

/** What the manager tells the running client. */
export interface TunnelManagerHooks {
  /** Open this tunnel on the server (if connected). */
  open(t: ManagedTunnel): void;
  /** Close this tunnel id on the server (if connected). */
  close(t: ManagedTunnel): void;
  /** The list changed (persist, publish). */
  changed(): void;
}

function freshRuntime(enabled: boolean): TunnelRuntime {
  return {
    status: enabled ? 'opening' : 'disabled',
    publicAddress: '',
    activeConnections: 0,
    totalConnections: 0,
    bytesIn: 0,
    bytesOut: 0,
    failedDials: 0,
    local: { state: 'unknown' },
    recent: [],
  };
}

/** A tunnel's runtime after a reopen: its state starts over, its counters and history carry on. */
function reopenedRuntime(old: TunnelRuntime, enabled: boolean): TunnelRuntime {
  const {
    status: _s,
    error: _e,
    errorReason: _r,
    nextRetryAt: _n,
    effective: _f,
    publicAddress: _p,
    ...kept
  } = old;
  return { ...kept, status: enabled ? 'opening' : 'disabled', publicAddress: '' };
}

/** The fields the server sees (a change reopens the tunnel there). */
function wireShape(c: TunnelEntry): string {
  return JSON.stringify([
    c.remotePort,
    c.enabled,
    c.name,
    c.compress,
    c.permitFrom,
    c.maxConnections,
    c.rateLimit,
  ]);
}

/** The tunnels of one client. */
export class TunnelManager implements TunnelManagerLike {
  readonly #tunnels: ManagedTunnel[] = [];
  #nextId = 1;
  #hooks: TunnelManagerHooks | undefined;

  constructor(initial: readonly TunnelConfig[]) {
    initial.forEach((t, i) => {
      this.#insert(parseClientTunnel(t, `tunnels[${i}].compress`));
    });
  }

  /** Connects the manager to a running client. */
  attach(hooks: TunnelManagerHooks): void {
    this.#hooks = hooks;
  }

  list(): TunnelConfig[] {
    return this.#tunnels.map((t) => ({ ...t.config }));
  }

  /** Tunnels as the dashboard shows them. */
  views(): TunnelView[] {
    return this.#tunnels.map((t) => ({ ...t.config, ...t.runtime }) as TunnelView);
  }

  /** All managed tunnels (the client's own use). */
  all(): readonly ManagedTunnel[] {
    return this.#tunnels;
  }

  byId(tunnelId: number): ManagedTunnel | undefined {
    return this.#tunnels.find((t) => t.tunnelId === tunnelId);
  }

  byName(name: string): ManagedTunnel | undefined {
    return this.#tunnels.find((t) => t.config.name === name);
  }

  /** Gives every tunnel a new wire id (a new session starts from scratch). */
  renumber(): void {
    for (const t of this.#tunnels) t.tunnelId = this.#nextId++;
  }

  add(tunnel: TunnelConfig): void {
    const config = parseClientTunnel(tunnel);
    this.#checkUnique(config);
    const t = this.#insert(config);
    if (config.enabled) this.#hooks?.open(t);
    this.#hooks?.changed();
  }

  update(name: string, tunnel: TunnelConfig): void {
    const t = this.#need(name);
    const config = parseClientTunnel(tunnel);
    this.#checkUnique(config, t);
    const reopen = wireShape(t.config) !== wireShape(config);
    if (reopen && t.config.enabled) this.#hooks?.close(t);
    t.config = config;
    if (reopen) {
      if (t.retry.timer) clearTimeout(t.retry.timer);
      t.tunnelId = this.#nextId++;
      t.runtime = reopenedRuntime(t.runtime, config.enabled);
      t.retry = { attempt: 0 };
      if (config.enabled) this.#hooks?.open(t);
    }
    this.#hooks?.changed();
  }

  retry(name: string): void {
    const t = this.#need(name);
    if (!t.config.enabled || t.runtime.status !== 'error') return;
    if (t.retry.timer) clearTimeout(t.retry.timer);
    t.retry = { attempt: t.retry.attempt };
    t.tunnelId = this.#nextId++;
    this.#hooks?.open(t);
    this.#hooks?.changed();
  }

  /** A new wire id for one tunnel (each attempt to open it gets its own). */
  nextId(t: ManagedTunnel): number {
    t.tunnelId = this.#nextId++;
    return t.tunnelId;
  }

  remove(name: string): void {
    const t = this.#need(name);
    if (t.retry.timer) clearTimeout(t.retry.timer);
    if (t.config.enabled) this.#hooks?.close(t);
    this.#tunnels.splice(this.#tunnels.indexOf(t), 1);
    this.#hooks?.changed();
  }

  setEnabled(name: string, enabled: boolean): void {
    const t = this.#need(name);
    if (t.config.enabled === enabled) return;
    this.update(name, { ...t.config, enabled });
  }

  #insert(config: TunnelEntry): ManagedTunnel {
    const t: ManagedTunnel = {
      config,
      tunnelId: this.#nextId++,
      runtime: freshRuntime(config.enabled),
      retry: { attempt: 0 },
      zstd: false,
    };
    this.#tunnels.push(t);
    return t;
  }

  #need(name: string): ManagedTunnel {
    const t = this.byName(name);
    if (!t) throw new ConfigError(`no tunnel named "${name}"`, 'name');
    return t;
  }

  #checkUnique(config: TunnelEntry, except?: ManagedTunnel): void {
    for (const other of this.#tunnels) {
      if (other === except) continue;
      if (other.config.name === config.name)
        throw new ConfigError(`name "${config.name}" is already used`, 'name');
      if (other.config.remotePort === config.remotePort) {
        throw new ConfigError(
          `public port ${config.remotePort} is already used by "${other.config.name}"`,
          'remotePort',
        );
      }
    }
  }
}
