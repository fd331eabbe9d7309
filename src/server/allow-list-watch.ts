/**
 * The server's allow-list, live: loaded at start, watched, reloaded on every change. A reload that
 * fails fails closed: keys whose lines cannot be read any more are refused (and a key's ports may only
 * narrow) until the file is fixed — a broken edit must neither lock everyone out nor keep a removed
 * key in.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  type AddressBlockOption,
  type AllowListEntry,
  fingerprint,
  IdentityError,
  loadAllowList,
  parseAllowList,
} from '../identity/index.js';
import type { Logger } from '../util/logger.js';
import { intersectRanges } from './port-ranges.js';
import { inBlock } from './visitor-filter.js';

/** Changes to the file are applied this long after the last one (editors write in several steps). */
export const ALLOW_LIST_DEBOUNCE_MS = 100;

/** A watched allow-list file. */
export class AllowListWatch {
  readonly path: string;
  #entries: readonly AllowListEntry[] = [];
  #lastError: string | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  readonly #log: Logger;
  readonly #onChange: (entries: readonly AllowListEntry[]) => void;

  constructor(opts: { path: string; log: Logger; onChange: (entries: readonly AllowListEntry[]) => void }) {
    this.path = opts.path;
    this.#log = opts.log;
    this.#onChange = opts.onChange;
  }

  /** The keys allowed now. */
  get entries(): readonly AllowListEntry[] {
    return this.#entries;
  }

  /** Why the last reload failed (the list then fails closed), or undefined when it parsed. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Loads the file (a broken one is an error here: nothing has started yet) and starts watching. */
  async start(): Promise<void> {
    const loaded = await loadAllowList(this.path);
    this.#entries = loaded.entries;
    if (!loaded.exists) {
      this.#log.warn('allow-list file does not exist yet; no client can connect until a key is added', {
        path: this.path,
        fix: `mtt allow CLIENT_KEY.pub --allowed-keys ${this.path}`,
      });
    }
    const file = basename(this.path);
    // Watch the folder: an atomic rename replaces the file's inode, which a file watch would miss.
    this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
      if (name !== null && name !== file) return;
      if (this.#debounce) clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.reload(), ALLOW_LIST_DEBOUNCE_MS);
    });
    this.#watcher.on('error', (err) =>
      this.#log.warn('cannot watch the allow-list; restart to apply changes', { error: err }),
    );
  }

  /** Reads the file again and applies it (it is also watched). */
  async reload(): Promise<void> {
    let next: readonly AllowListEntry[];
    try {
      next = (await loadAllowList(this.path)).entries;
      this.#lastError = undefined;
      this.#log.info('allow-list loaded', { path: this.path, keys: next.length });
    } catch (err) {
      this.#lastError = (err as Error).message;
      next = await this.#failClosed(err as Error);
    }
    this.#entries = next;
    this.#onChange(next);
  }

  /** Stops watching. */
  close(): void {
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#watcher?.close();
  }

  /**
   * What still holds when the file cannot be parsed: each previously allowed key that still has a
   * readable line keeps the ports both versions allow; every other key is refused. New keys wait for
   * a file that parses.
   */
  async #failClosed(err: Error): Promise<AllowListEntry[]> {
    let text = '';
    if (err instanceof IdentityError && err.code === 'ERR_ALLOWLIST_SYNTAX') {
      text = await readFile(this.path, 'utf8').catch(() => '');
    }
    const readable = new Map<string, AllowListEntry>();
    text.split('\n').forEach((line, i) => {
      try {
        for (const e of parseAllowList(line, `${this.path}:${i + 1}`))
          readable.set(e.publicRaw.toString('hex'), e);
      } catch {
        // This line is the broken one (or one of them): its key, if any, is refused.
      }
    });
    const kept: AllowListEntry[] = [];
    const refused: string[] = [];
    for (const old of this.#entries) {
      const now = readable.get(old.publicRaw.toString('hex'));
      if (!now) {
        refused.push(fingerprint(old.publicRaw));
        continue;
      }
      const from = narrowerFrom(old.options.permitFrom, now.options.permitFrom);
      kept.push({
        ...now,
        options: {
          permitListen: intersectRanges(old.options.permitListen, now.options.permitListen),
          ...(from ? { permitFrom: from } : {}),
          ...stricter('maxConnections', old.options, now.options),
          ...stricter('rateLimit', old.options, now.options),
        },
      });
    }
    this.#log.error('allow-list has an error; failing closed until it is fixed', {
      path: this.path,
      error: err,
      refused: refused.length > 0 ? refused : 'none',
      fix: 'correct the file; the new list applies as soon as it parses',
    });
    return kept;
  }
}

/**
 * While failing closed, visitors may only narrow: the new blocks that lie inside an old one (when
 * both lines have permitfrom), the old blocks when the new line lost its permitfrom.
 */
function narrowerFrom(
  old: readonly AddressBlockOption[] | undefined,
  now: readonly AddressBlockOption[] | undefined,
): AddressBlockOption[] | undefined {
  if (old === undefined) return now ? [...now] : undefined;
  if (now === undefined) return [...old];
  return now.filter((n) => old.some((o) => o.prefix <= n.prefix && inBlock(o, n.family, n.address)));
}

/** While failing closed, a ceiling may only tighten: the smaller of two, either one alone. */
function stricter(
  field: 'maxConnections' | 'rateLimit',
  old: AllowListEntry['options'],
  now: AllowListEntry['options'],
): Partial<Record<typeof field, number>> {
  const a = old[field];
  const b = now[field];
  const v = a === undefined ? b : b === undefined ? a : Math.min(a, b);
  return v === undefined ? {} : { [field]: v };
}
