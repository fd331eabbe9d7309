/** `mtt gui`: the client with its dashboard, window and tray (src/gui). */
import { ConfigError } from '../config/config-error.js';
import { makeLogging } from './logging.js';
import { checkLz4 } from './lz4-check.js';
import { parseCommand } from './parse-command.js';

const GUI_HELP = `Usage: mtt gui [--config FILE] [--no-window] [--dashboard-port N] [--dashboard-host HOST:PORT]

Runs the client with a dashboard on 127.0.0.1, an app window and a tray icon. One instance per
config file: starting it again brings the running one's window forward.

  --config FILE              the client config (JSON); edits of it apply live, dashboard changes are
                             saved to it. Default: client.json in the mtt config folder; when it does
                             not exist yet, the dashboard opens a setup view that creates it
  --no-window                do not open a window; print the dashboard URL (with its access token)
  --dashboard-port N         serve the dashboard on 127.0.0.1:N (default: a free port)
  --dashboard-host HOST:PORT also accept this Host header (repeatable): the address a browser uses
                             through a forwarded port, e.g. localhost:8080 for
                             ssh -L 8080:127.0.0.1:N box
  --log-level LEVEL          debug, info, warn or error (default info)
  --log-format FORMAT        json or pretty (default: pretty on a terminal, JSON otherwise)
`;

/** "host:port" as a browser sends it in Host (IPv6 in brackets). */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** mtt gui */
export async function runGui(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, {
    config: { type: 'string', short: 'c' },
    'no-window': { type: 'boolean' },
    'dashboard-port': { type: 'string' },
    'dashboard-host': { type: 'string', multiple: true },
  });
  if (values.help) {
    process.stdout.write(GUI_HELP);
    return 0;
  }
  const portText = values['dashboard-port'] as string | undefined;
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !(/^\d{1,5}$/.test(portText!) && port <= 65535)) {
    throw new ConfigError(
      `--dashboard-port must be a port from 0 to 65535, not "${portText}"`,
      '--dashboard-port',
    );
  }
  const hosts = (values['dashboard-host'] as string[] | undefined) ?? [];
  for (const h of hosts) {
    const m = HOST_HEADER.exec(h);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new ConfigError(
        `--dashboard-host must be HOST:PORT as the browser's address bar shows it (e.g. localhost:8080), not "${h}"`,
        '--dashboard-host',
      );
    }
  }
  const { log } = makeLogging(values);
  checkLz4(log);
  const { guiCommand } = await import('../gui/command.js');
  const code = await guiCommand({
    log,
    configPath: (values.config as string | undefined) ?? '',
    noWindow: values['no-window'] === true,
    ...(port !== undefined ? { port } : {}),
    ...(hosts.length > 0 ? { dashboardHosts: hosts.map((h) => h.toLowerCase()) } : {}),
    signal,
  });
  // Quit means the process ends: should anything outlive the GUI (a stuck socket, a child), it must
  // not keep an invisible process running. The timer does not hold the process open by itself.
  setTimeout(() => {
    log.warn('mtt gui was still running 2 s after Quit; exiting', {
      resources: process.getActiveResourcesInfo().join(', '),
    });
    process.exit(code);
  }, 2000).unref();
  return code;
}
