/** Where mtt keeps its files by default: the user's config folder, overridable with MTT_CONFIG_DIR. */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** The folder for keys, allow-list and known servers. */
export function configDir(): string {
  const env = process.env.MTT_CONFIG_DIR;
  if (env) return env;
  if (process.platform === 'win32')
    return join(process.env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'mtt');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'mtt');
  return join(xdgConfigHome(process.env.XDG_CONFIG_HOME), 'mtt');
}

/**
 * $XDG_CONFIG_HOME when it is an absolute path, else ~/.config: the XDG base directory spec says an
 * empty or relative value is to be ignored (a relative one would put keys under the working folder).
 */
export function xdgConfigHome(value: string | undefined): string {
  return value && isAbsolute(value) ? value : join(homedir(), '.config');
}

/** Default file locations under configDir(). */
export const defaultPaths = {
  hostKey: () => join(configDir(), 'host_key'),
  allowedKeys: () => join(configDir(), 'allowed_keys'),
  identity: () => join(configDir(), 'id_ed25519'),
  knownServers: () => join(configDir(), 'known_servers'),
  /** The server's admin socket, read by `mtt status`. */
  adminSocket: () => join(configDir(), 'admin.sock'),
};
