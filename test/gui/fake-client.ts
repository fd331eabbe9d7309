/**
 * An in-memory stand-in for the client's StateStore + TunnelManager, for tests that need exact control
 * of the state (reconnect countdowns, rejections, byte counters). It validates like the real one: a bad
 * field throws an Error whose message names the field.
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

  snapshot(): ClientSnapshot {
    return {
      connection: this.connection,
      server: { address: 'tunnel.example.net:7835', fingerprint: 'SHA256:fakeServerKeyFingerprint' },
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
    return [...this.views.values()].map(({ name, remotePort, localHost, localPort, enabled }) => ({
      name,
      remotePort,
      localHost,
      localPort,
      enabled,
    }));
  }

  add(t: TunnelConfig): void {
    check(t);
    if (this.views.has(t.name)) throw new Error(`name: a tunnel called ${t.name} already exists`);
    this.views.set(t.name, this.#view(t));
    this.#changed(`add ${t.name}`);
  }

  update(name: string, t: TunnelConfig): void {
    check(t);
    if (!this.views.has(name)) throw new Error(`name: no tunnel called ${name}`);
    if (t.name !== name && this.views.has(t.name))
      throw new Error(`name: a tunnel called ${t.name} already exists`);
    this.views.delete(name);
    this.views.set(t.name, this.#view(t));
    this.#changed(`update ${name}`);
  }

  remove(name: string): void {
    if (!this.views.delete(name)) throw new Error(`name: no tunnel called ${name}`);
    this.#changed(`remove ${name}`);
  }

  setEnabled(name: string, enabled: boolean): void {
    const v = this.views.get(name);
    if (!v) throw new Error(`name: no tunnel called ${name}`);
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
    const enabled = t.enabled ?? true;
    return {
      name: t.name,
      remotePort: t.remotePort,
      localHost: t.localHost,
      localPort: t.localPort,
      enabled,
      status: enabled ? 'active' : 'disabled',
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

function check(t: TunnelConfig): void {
  if (typeof t.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(t.name)) {
    throw new Error('name must be 1-64 characters of A-Z a-z 0-9 . _ -');
  }
  for (const f of ['remotePort', 'localPort'] as const) {
    const v = t[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
      throw new Error(`${f} must be an integer from 1 to 65535`);
    }
  }
  if (typeof t.localHost !== 'string' || t.localHost === '') throw new Error('localHost must not be empty');
}
