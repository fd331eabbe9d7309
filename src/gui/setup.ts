/**
 * First run: `mtt gui` with no config file yet. The client's key is made (or the existing default key
 * used) at once, so the setup view can show the public key line to give to the server's admin; the
 * view then takes the server's address (and, if the admin gave it, the server's key), writes the
 * config file, and the client starts. The dashboard runs through all of it on one port and token:
 * LateClient stands in for the client until there is one, then passes everything through.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  type ClientSnapshot,
  loadClientIdentity,
  type MttClient,
  type StateStoreLike,
  type TunnelConfig,
  type TunnelManagerLike,
} from '../client/index.js';
import { configDir, saveClientConfig } from '../config/files.js';
import { ConfigError, parseClientConfig } from '../config/index.js';
import { fingerprint, formatPublicKeyLine } from '../identity/index.js';
import type { Logger } from '../util/logger.js';

/** The config file `mtt gui` uses when no --config is given. */
export function defaultConfigPath(): string {
  return join(configDir(), 'client.json');
}

/** What the setup view shows. */
export interface SetupInfo {
  configPath: string;
  identityPath: string;
  publicKeyLine: string;
  fingerprint: string;
  /** The key was made just now (rather than found). */
  createdKey: boolean;
}

/** The client's key for a first run: the default one, made now if there is none. */
export async function prepareSetup(configPath: string, log: Logger): Promise<SetupInfo> {
  const { identity, path, created } = await loadClientIdentity({ identityPath: undefined }, log);
  return {
    configPath,
    identityPath: path,
    publicKeyLine: formatPublicKeyLine(identity.publicRaw, identity.comment),
    fingerprint: fingerprint(identity.publicRaw),
    createdKey: created,
  };
}

/**
 * Writes the first config file from the setup view's answers. Validated with the client's schema
 * first (a ConfigError names the field); never overwrites a file that appeared meanwhile.
 */
export async function writeFirstConfig(
  info: SetupInfo,
  answers: { server: string; serverKey?: string },
): Promise<void> {
  const config: Record<string, unknown> = { server: answers.server.trim() };
  if (answers.serverKey?.trim()) config.serverKey = answers.serverKey.trim();
  config.tunnels = [];
  parseClientConfig(config, 'the setup');
  await mkdir(dirname(info.configPath), { recursive: true, mode: 0o700 });
  const { access } = await import('node:fs/promises');
  if (
    await access(info.configPath).then(
      () => true,
      () => false,
    )
  ) {
    throw new ConfigError(`${info.configPath} exists now; restart mtt gui to use it`, '--config');
  }
  await saveClientConfig(info.configPath, config);
}

/** Stands in for the client until it runs, then passes everything through to it. */
export class LateClient extends EventEmitter implements StateStoreLike, TunnelManagerLike {
  #client: MttClient | undefined;
  #setup: SetupInfo | undefined;
  #onChange = () => this.emit('change');

  constructor(setup?: SetupInfo) {
    super();
    this.#setup = setup;
  }

  /** The setup still waiting for answers, if any. */
  get setup(): SetupInfo | undefined {
    return this.#client ? undefined : this.#setup;
  }

  get client(): MttClient | undefined {
    return this.#client;
  }

  /** From now on everything is the client's. */
  attach(client: MttClient): void {
    this.#client = client;
    client.state.on('change', this.#onChange);
    this.emit('change');
  }

  detach(): void {
    this.#client?.state.off('change', this.#onChange);
  }

  snapshot(): ClientSnapshot {
    if (this.#client) return this.#client.state.snapshot();
    return {
      connection: { kind: 'stopped' },
      paused: false,
      server: { address: '' },
      identity: {
        publicKeyLine: this.#setup?.publicKeyLine ?? '',
        fingerprint: this.#setup?.fingerprint ?? '',
      },
      tunnels: [],
      events: [],
    };
  }

  #need(): MttClient {
    if (!this.#client) throw new ConfigError('set up the server first (the setup view)', 'server');
    return this.#client;
  }

  list(): TunnelConfig[] {
    return this.#client?.tunnels.list() ?? [];
  }
  add(t: TunnelConfig): void {
    this.#need().tunnels.add(t);
  }
  update(name: string, t: TunnelConfig): void {
    this.#need().tunnels.update(name, t);
  }
  remove(name: string): void {
    this.#need().tunnels.remove(name);
  }
  setEnabled(name: string, enabled: boolean): void {
    this.#need().tunnels.setEnabled(name, enabled);
  }
  retry(name: string): void {
    this.#need().tunnels.retry(name);
  }
}
