/**
 * Desktop integration on Linux and the BSDs (freedesktop.org specs): a launcher in the applications
 * menu (a .desktop file with the icon) and "start at login" (an XDG autostart entry, off by default).
 * Both run `mtt gui --config FILE` with the node and script this process runs with, so they work for
 * any install (global, npx cache, a clone).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../util/atomic-write.js';

/** File name of both entries (the desktop file id). */
export const DESKTOP_ID = 'minitcptunnel.desktop';
/** Icon name in the hicolor theme. */
export const ICON_NAME = 'minitcptunnel';

/** The app's icon, shipped with the web app. */
const ICON_SOURCE = fileURLToPath(new URL('../web/favicon.svg', import.meta.url));

/** An XDG base folder from the environment, if it is an absolute path. */
function absolute(value: string | undefined): string | undefined {
  return value && isAbsolute(value) ? value : undefined;
}

/** The XDG folders the entries go in. */
export function desktopPaths(env: NodeJS.ProcessEnv = process.env) {
  // Empty or relative values are ignored, as the XDG base directory spec says.
  const config = absolute(env.XDG_CONFIG_HOME) ?? join(env.HOME || homedir(), '.config');
  const data = absolute(env.XDG_DATA_HOME) ?? join(env.HOME || homedir(), '.local', 'share');
  return {
    autostart: join(config, 'autostart', DESKTOP_ID),
    launcher: join(data, 'applications', DESKTOP_ID),
    icon: join(data, 'icons', 'hicolor', 'scalable', 'apps', `${ICON_NAME}.svg`),
  };
}

/**
 * One argument quoted for a desktop entry's Exec key: inside double quotes, `"`, `` ` ``, `$` and `\`
 * are escaped with a backslash, and the whole value escapes backslashes once more (the spec's two
 * levels), and `%` is doubled (field codes).
 */
export function quoteExecArg(arg: string): string {
  const inner = arg.replace(/[\\"`$]/g, (c) => `\\${c}`).replace(/%/g, '%%');
  const quoted = /^[A-Za-z0-9_/.:=@+,-]+$/.test(arg) ? inner : `"${inner}"`;
  return quoted.replace(/\\/g, '\\\\');
}

/** The command line that starts this GUI again. */
export function execLine(configPath: string, argv: readonly string[] = process.argv): string {
  const [node = process.execPath, script = ''] = argv;
  return [node, script, 'gui', '--config', configPath].map(quoteExecArg).join(' ');
}

/** A desktop entry for `mtt gui --config FILE`. */
export function desktopEntry(
  configPath: string,
  opts: { autostart: boolean; argv?: readonly string[] },
): string {
  // Control characters would end the line: a path with one cannot go into an entry.
  if (/[\x00-\x1f\x7f]/.test(configPath)) throw new Error('the config path holds a control character');
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Version=1.4',
    'Name=MiniTCPTunnel',
    'GenericName=Reverse TCP tunnel',
    'Comment=Publish services of this network on a public server (ssh -R without the rest of SSH)',
    `Exec=${execLine(configPath, opts.argv)}`,
    `Icon=${ICON_NAME}`,
    'Terminal=false',
    'Categories=Network;',
    'StartupWMClass=MiniTCPTunnel',
    ...(opts.autostart ? ['X-GNOME-Autostart-enabled=true', 'X-GNOME-Autostart-Delay=5'] : []),
    '',
  ].join('\n');
}

/** Whether login starts the GUI, and for which config file. */
export async function autostartState(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ enabled: boolean; exec?: string }> {
  try {
    const text = await readFile(desktopPaths(env).autostart, 'utf8');
    const exec = /^Exec=(.*)$/m.exec(text)?.[1];
    const hidden = /^Hidden=true$/m.test(text);
    return { enabled: !hidden, ...(exec ? { exec } : {}) };
  } catch {
    return { enabled: false };
  }
}

/** Turns start-at-login on (an autostart entry for this config) or off (the entry removed). */
export async function setAutostart(
  enabled: boolean,
  configPath: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const path = desktopPaths(env).autostart;
  if (!enabled) {
    await rm(path, { force: true });
    return;
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, desktopEntry(configPath, { autostart: true }), { mode: 0o644 });
}

/** Puts the launcher and its icon in the applications menu (idempotent). */
export async function installLauncher(
  configPath: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const p = desktopPaths(env);
  await mkdir(dirname(p.launcher), { recursive: true });
  await mkdir(dirname(p.icon), { recursive: true });
  await writeFile(p.icon, await readFile(ICON_SOURCE));
  await writeFileAtomic(p.launcher, desktopEntry(configPath, { autostart: false }), { mode: 0o644 });
}

/** Whether the launcher is installed. */
export async function launcherInstalled(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return readFile(desktopPaths(env).launcher, 'utf8').then(
    () => true,
    () => false,
  );
}

/** Removes the launcher and its icon. */
export async function removeLauncher(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const p = desktopPaths(env);
  await rm(p.launcher, { force: true });
  await rm(p.icon, { force: true });
}
