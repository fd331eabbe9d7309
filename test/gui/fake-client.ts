/**
 * An in-memory stand-in for the client's StateStore + TunnelManager, for tests that need exact control
 * of the state (reconnect countdowns, rejections, byte counters). It validates with the real tunnel
 * schema: a bad field throws the same ConfigError (with its field) as the client.
 */
import { EventEmitter } from 'node:events';
import type {
  ClientSnapshot,
  ConnectionState,
  StateStoreLike,
  TunnelConfig,
  TunnelManagerLike,
  TunnelView,
} from '../../src/client/api.js';
import { parseTunnel, TUNNEL_FIELDS } from '../../src/config/client-config.js';
import { ConfigError } from '../../src/config/config-error.js';

export class FakeClient extends EventEmitter implements StateStoreLike, TunnelManagerLike {
  connection: ConnectionState = {
    kind: 'connected',
    serverFingerprint: 'SHA256:fakeServerKeyFingerprint',
    since: Date.now(),
  };
  views = new Map<string, TunnelView>();
  events: ClientSnapshot['events'] = [];
  /** Every successful change, for assertions. */
  changes: string[] = [];
  /** The ports the server advertises for this key (absent: it did not say). */
  allowedPorts: { low: number; high: number }[] | undefined;
  paused = false;

  snapshot(): ClientSnapshot {
    return {
      connection: this.connection,
      paused: this.paused,
      server: {
        address: 'tunnel.example.net:7835',
        fingerprint: 'SHA256:fakeServerKeyFingerprint',
        ...(this.allowedPorts ? { allowedPorts: this.allowedPorts } : {}),
      },
      identity: {
        publicKeyLine:
          'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake mtt-client',
        fingerprint: 'SHA256:fakeClientKeyFingerprint',
      },
      tunnels: [...this.views.values()].map((v) => ({ ...v })),
      events: [...this.events],
    };
  }

  list(): TunnelConfig[] {
    return [...this.views.values()].map((v) => {
      const out: Record<string, unknown> = {};
      for (const f of TUNNEL_FIELDS) if (v[f] !== undefined) out[f] = v[f];
      return out as TunnelConfig;
    });
  }

  add(t: TunnelConfig): void {
    const entry = parseTunnel(t);
    if (this.views.has(entry.name))
      throw new ConfigError(`a tunnel called "${entry.name}" already exists`, 'name');
    this.views.set(entry.name, this.#view(t));
    this.#changed(`add ${entry.name}`);
  }

  update(name: string, t: TunnelConfig): void {
    const entry = parseTunnel(t);
    if (!this.views.has(name)) throw new ConfigError(`no tunnel named "${name}"`, 'name');
    if (entry.name !== name && this.views.has(entry.name))
      throw new ConfigError(`a tunnel called "${entry.name}" already exists`, 'name');
    this.views.delete(name);
    this.views.set(entry.name, this.#view(t));
    this.#changed(`update ${name}`);
  }

  remove(name: string): void {
    if (!this.views.delete(name)) throw new ConfigError(`no tunnel named "${name}"`, 'name');
    this.#changed(`remove ${name}`);
  }

  setEnabled(name: string, enabled: boolean): void {
    const v = this.views.get(name);
    if (!v) throw new ConfigError(`no tunnel named "${name}"`, 'name');
    v.enabled = enabled;
    v.status = enabled ? 'active' : 'disabled';
    this.#changed(`${enabled ? 'enable' : 'disable'} ${name}`);
  }

  /** Mutates a tunnel's view (counters, status) and emits 'change'. */
  patch(name: string, p: Partial<TunnelView>): void {
    const v = this.views.get(name);
    if (!v) throw new Error(`no tunnel ${name}`);
    Object.assign(v, p);
    this.emit('change');
  }

  setConnection(c: ConnectionState): void {
    this.connection = c;
    this.emit('change');
  }

  #view(t: TunnelConfig): TunnelView {
    const entry = parseTunnel(t);
    return {
      ...entry,
      status: entry.enabled ? 'active' : 'disabled',
      publicAddress: `tunnel.example.net:${t.remotePort}`,
      activeConnections: 0,
      totalConnections: 0,
      bytesIn: 0,
      bytesOut: 0,
      failedDials: 0,
    };
  }

  #changed(what: string): void {
    this.changes.push(what);
    this.events.push({ at: Date.now(), level: 'info', message: what });
    this.emit('change');
  }
}
