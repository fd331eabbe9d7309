/**
 * The desktop GUI's own settings (not the client's): whether to show desktop notifications. Kept in
 * gui.json in the mtt config folder, written atomically; a missing or broken file means the defaults.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configDir } from '../config/files.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** The GUI's preferences. */
export interface Preferences {
  /** Desktop notifications on disconnect, rejection, refused tunnels and dead local services. */
  notifications: boolean;
}

/** What a new user gets. */
export const DEFAULT_PREFERENCES: Preferences = { notifications: true };

/** Where the preferences live. */
export function preferencesPath(): string {
  return join(configDir(), 'gui.json');
}

/** Reads the preferences; anything missing or unreadable is the default. */
export async function loadPreferences(path = preferencesPath()): Promise<Preferences> {
  try {
    const raw = JSON.parse(await readFile(path, 'utf8')) as Partial<Record<keyof Preferences, unknown>>;
    return {
      notifications:
        typeof raw.notifications === 'boolean' ? raw.notifications : DEFAULT_PREFERENCES.notifications,
    };
  } catch {
    return { ...DEFAULT_PREFERENCES };
  }
}

/** Saves the preferences (0600, atomically). */
export async function savePreferences(p: Preferences, path = preferencesPath()): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(p, null, 2)}\n`, { mode: 0o600 });
}
