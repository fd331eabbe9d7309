/**
 * ConfigSync: keeps a running client and its config file in step, without ever losing what a person
 * wrote.
 *
 * - Outside edits (an editor, a script) are seen through a watch on the file's folder and applied
 *   live: tunnels through the TunnelManager, server settings through the client's updateSettings().
 *   A file that does not validate is reported once and not applied; the running state stays.
 * - Changes made in the client (the dashboard, the tray) become small operations (add, remove,
 *   update one tunnel, set a setting) applied to the file's own JSON: only the fields that changed
 *   are written; fields, defaults and order the user did not touch stay as they were, and so does
 *   the file's mode. Writes are atomic.
 * - Before every write the file is read again. If it changed since we last read it, the new text is
 *   taken as the base, our pending operations are merged onto it, the client is brought in line with
 *   the merge, and only then is the file written: a save never overwrites a newer file. While the
 *   file does not validate, nothing is written and the pending operations wait for it to be fixed.
 *
 * Everything (reading, reconciling, writing) runs on one serial queue, so no two passes interleave.
 * The edits to the file's JSON themselves are config-edits.ts.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import {
  type ClientConfig,
  parseClientConfig,
  parseTunnel,
  type TunnelConfig,
  type TunnelEntry,
} from '../config/client-config.js';
import {
  type LoadedClientConfig,
  loadClientConfig,
  parseClientConfigText,
} from '../config/client-config-file.js';
import { ConfigError } from '../config/config-error.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { type Logger, silentLogger } from '../util/logger.js';
import { applyOp, describeOp, diffTunnels, formatLike, type Op, type Raw, same } from './config-edits.js';

/** How long the watcher waits for a burst of file events (an editor's save) to settle. */
export const WATCH_SETTLE_MS = 60;

/** The settings a running client can take live (the server, its key, timings, the pool). */
export const LIVE_SETTINGS = [
  'server',
  'serverKey',
  'heartbeatSeconds',
  'heartbeatTimeoutSeconds',
  'reconnectMaxSeconds',
  'dataChannelPool',
] as const;
/** A live setting's name. */
export type LiveSetting = (typeof LIVE_SETTINGS)[number];
/** New values for some live settings (absent = unchanged; serverKey may be set to undefined to unpin). */
export type LiveSettingsPatch = Partial<Pick<ClientConfig, LiveSetting>>;

/** Settings that take effect only at the next start. */
const RESTART_SETTINGS = ['identity', 'knownServers', 'metrics'] as const;

/** What the sync drives in the running client. */
export interface SyncTarget {
  tunnels: {
    list(): TunnelConfig[];
    add(t: TunnelConfig): void;
    update(name: string, t: TunnelConfig): void;
    remove(name: string): void;
  };
  /** Applies new settings live (MttClient.updateSettings); absent on a client that cannot. */
  updateSettings?: (patch: LiveSettingsPatch) => unknown;
  /** Tells the user (the dashboard's events list). */
  event(level: 'info' | 'warn' | 'error', message: string, tunnel?: string): void;
}

/** The config file of a running client, kept in step with it. */
export class ConfigSync {
  readonly path: string;
  #log: Logger;
  #target: SyncTarget | undefined;
  #base: LoadedClientConfig;
  /** The TunnelManager's list as of the last change we saw, to turn the next change into ops. */
  #lastList: TunnelEntry[] = [];
  #pending: Op[] = [];
  #queue: Promise<void> = Promise.resolve();
  #queued = false;
  #applying = false;
  #watcher: FSWatcher | undefined;
  #settle: NodeJS.Timeout | undefined;
  #reportedBadText: string | undefined;
  #closed = false;
  /** The settings the running client has now (from the file at start, then every change applied). */
  #live: ClientConfig;

  private constructor(path: string, base: LoadedClientConfig, log: Logger) {
    this.path = path;
    this.#base = base;
    this.#live = base.config;
    this.#log = log;
    this.#lastList = base.config.tunnels.map((t) => ({ ...t }));
  }

  /**
   * Reads and validates the config file (a ConfigError names every wrong field). A symlink is
   * followed, so saves replace the file it points to, not the link.
   */
  static async open(path: string, opts: { log?: Logger } = {}): Promise<ConfigSync> {
    const abs = resolve(path);
    let real = abs;
    try {
      real = await realpath(abs);
    } catch {
      // Missing: the read below says so with the fix.
    }
    return new ConfigSync(real, await loadClientConfig(real), opts.log ?? silentLogger);
  }

  /** The config as last read or written. */
  get current(): LoadedClientConfig {
    return this.#base;
  }

  /** Connects the running client and starts watching the file. */
  attach(target: SyncTarget): void {
    this.#target = target;
    this.#lastList = target.tunnels.list().map((t) => parseTunnel(t));
    const name = basename(this.path);
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name) return;
        if (this.#settle) clearTimeout(this.#settle);
        this.#settle = setTimeout(() => {
          this.#settle = undefined;
          this.#schedule();
        }, WATCH_SETTLE_MS);
      });
      this.#watcher.on('error', (err) => {
        this.#log.warn('stopped watching the config file', { path: this.path, error: err });
      });
    } catch (err) {
      this.#log.warn('cannot watch the config file; outside edits apply at the next start', {
        path: this.path,
        error: err as Error,
      });
    }
  }

  /**
   * The TunnelManager's list after a change (its onTunnelsChanged hook). Turns the change into
   * operations on the file and schedules a save. Changes the sync makes itself are not echoed.
   */
  tunnelsChanged(list: readonly TunnelConfig[]): void {
    const next = list.map((t) => parseTunnel(t));
    const prev = this.#lastList;
    this.#lastList = next;
    if (this.#applying || this.#closed) return;
    const ops = diffTunnels(prev, next);
    for (const op of ops) {
      const e = describeOp(op, prev);
      if (e) this.#target?.event('info', e.message, e.tunnel);
    }
    this.#pending.push(...ops);
    this.#schedule();
  }

  /**
   * Changes settings (the dashboard's settings view): validated against the whole config (a
   * ConfigError names the field), applied live where the client can, and saved. Resolves once saved.
   */
  async updateSettings(patch: LiveSettingsPatch): Promise<void> {
    const candidate: Raw = { ...this.#base.raw };
    for (const [k, v] of Object.entries(patch)) {
      if (!(LIVE_SETTINGS as readonly string[]).includes(k)) {
        throw new ConfigError(`"${k}" cannot be changed here`, k);
      }
      if (v === undefined) delete candidate[k];
      else candidate[k] = v;
    }
    const checked = parseClientConfig(candidate, this.path);
    const changed: Raw = {};
    for (const k of LIVE_SETTINGS) {
      if (!same(checked[k], this.#live[k])) changed[k] = checked[k];
    }
    if (Object.keys(changed).length === 0) return;
    const op: Op = { kind: 'settings', patch: changed };
    this.#pending.push(op);
    this.#target?.event('info', describeOp(op, [])!.message);
    this.#applyLiveSettings(checked);
    this.#schedule();
    await this.flush();
  }

  /** Resolves when every change so far has been handled (saved, or reported). */
  flush(): Promise<void> {
    return this.#queue;
  }

  /** Stops watching; finishes a save under way. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher?.close();
    if (this.#settle) clearTimeout(this.#settle);
    await this.#queue;
  }

  #schedule(): void {
    if (this.#queued || this.#closed) return;
    this.#queued = true;
    this.#queue = this.#queue.then(async () => {
      this.#queued = false;
      try {
        await this.#sync();
      } catch (err) {
        this.#log.error('config file sync failed', { path: this.path, error: err as Error });
        this.#target?.event('error', `could not update ${this.path}: ${(err as Error).message}`);
      }
    });
  }

  /** One pass: read the file, merge what changed on either side, bring the client in line, write. */
  async #sync(): Promise<void> {
    const text = await readText(this.path);
    const ops = this.#pending.splice(0);
    const outsideEdit = text !== this.#base.text;
    if (!outsideEdit && ops.length === 0) return;

    let base = this.#base;
    if (outsideEdit) {
      if (text === undefined) {
        this.#pending.unshift(...ops);
        this.#reportOnce('', `${this.path} was removed; changes are kept in memory until it is back`);
        return;
      }
      try {
        base = parseClientConfigText(this.path, text);
      } catch (err) {
        // Never write over a file someone is in the middle of editing; wait until it is valid.
        this.#pending.unshift(...ops);
        const detail = (err as Error).message;
        // Said once per version of the file, and once more when a change starts waiting on it.
        this.#reportOnce(
          ops.length > 0 ? `${text}\0waiting` : text,
          ops.length > 0
            ? `not saved: ${detail}\nFix the file; the change is saved once it is valid again.`
            : `the config file was edited but is not valid, so nothing was applied:\n${detail}`,
        );
        return;
      }
      this.#reportedBadText = undefined;
    }

    let raw: Raw = structuredClone(base.raw);
    for (const op of ops)
      raw = applyOp(raw, op, (message, tunnel) => this.#target?.event('warn', message, tunnel));
    let merged: ClientConfig;
    let refused = false;
    try {
      merged = parseClientConfig(raw, this.path);
    } catch (err) {
      // Our change does not fit the file as it is now (e.g. a port an outside edit took): the file
      // wins, and the client follows it.
      this.#target?.event('error', `not saved: ${(err as Error).message}`);
      raw = structuredClone(base.raw);
      merged = base.config;
      refused = true;
    }

    if (outsideEdit || refused) {
      this.#reconcile(merged.tunnels);
      this.#applyLiveSettings(merged);
      if (outsideEdit) this.#target?.event('info', `applied the edited config file ${this.path}`);
    }
    if (same(raw, base.raw)) {
      this.#base = base;
      return;
    }
    const newText = formatLike(base.text, raw);
    const mode = (await stat(this.path)).mode & 0o7777;
    await writeFileAtomic(this.path, newText, { mode });
    this.#base = {
      ...base,
      config: merged,
      raw,
      text: newText,
    };
  }

  #reportOnce(text: string, message: string): void {
    if (this.#reportedBadText === text) return;
    this.#reportedBadText = text;
    this.#log.warn(message, { path: this.path });
    this.#target?.event('error', message);
  }

  /** Brings the TunnelManager in line with `wanted`, changing only the tunnels that differ. */
  #reconcile(wanted: readonly TunnelEntry[]): void {
    const target = this.#target;
    if (!target) return;
    this.#applying = true;
    try {
      const have = new Map(target.tunnels.list().map((t) => [t.name, parseTunnel(t)]));
      const want = new Map(wanted.map((t) => [t.name, t]));
      for (const name of have.keys()) {
        if (!want.has(name)) {
          target.tunnels.remove(name);
          target.event('info', `removed by an edit of the config file`, name);
        }
      }
      const retry: TunnelEntry[] = [];
      for (const t of wanted) {
        const old = have.get(t.name);
        if (!old) continue;
        if (same(old, t)) continue;
        try {
          target.tunnels.update(t.name, t);
          target.event('info', `changed by an edit of the config file`, t.name);
        } catch {
          // E.g. two tunnels swapped ports: free this one's port first, add it back below.
          target.tunnels.remove(t.name);
          retry.push(t);
        }
      }
      for (const t of [...wanted.filter((x) => !have.has(x.name)), ...retry]) {
        try {
          target.tunnels.add(t);
          if (!retry.includes(t)) target.event('info', `added by an edit of the config file`, t.name);
          else target.event('info', `changed by an edit of the config file`, t.name);
        } catch (err) {
          target.event('error', `could not apply the config file: ${(err as Error).message}`, t.name);
        }
      }
    } finally {
      this.#applying = false;
      this.#lastList = target.tunnels.list().map((t) => parseTunnel(t));
    }
  }

  /** Gives the running client the settings of `after` that differ from what it has now. */
  #applyLiveSettings(after: ClientConfig): void {
    const before = this.#live;
    this.#live = after;
    const patch: Raw = {};
    for (const k of LIVE_SETTINGS) if (!same(before[k], after[k])) patch[k] = after[k];
    for (const k of RESTART_SETTINGS) {
      if (!same(before[k], after[k])) {
        this.#target?.event('warn', `${k} changed in the config file: it applies when mtt is started again`);
      }
    }
    if (Object.keys(patch).length === 0) return;
    const update = this.#target?.updateSettings;
    if (update) {
      update(patch as LiveSettingsPatch);
    } else {
      this.#target?.event(
        'warn',
        `settings changed (${Object.keys(patch).join(', ')}): they apply when mtt is started again`,
      );
    }
  }
}

/** Reads a file as text; undefined when it does not exist. */
async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
