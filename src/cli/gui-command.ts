/** `mtt gui`: the client with its dashboard, window and tray (src/gui). */
import { makeLogging } from './logging.js';
import { parseCommand } from './parse-command.js';

const GUI_HELP = `Usage: mtt gui --config FILE [--no-window]

Runs the client with a dashboard on 127.0.0.1, an app window and a tray icon.

  --config FILE   the client config (JSON); tunnel changes made in the dashboard are saved to it
  --no-window     do not open a window; print the dashboard URL (with its access token) instead
  --log-level LEVEL    debug, info, warn or error (default info)
  --log-format FORMAT  json or pretty (default: pretty on a terminal, JSON otherwise)
`;

/** mtt gui */
export async function runGui(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseCommand(argv, {
    config: { type: 'string', short: 'c' },
    'no-window': { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(GUI_HELP);
    return 0;
  }
  const { log } = makeLogging(values);
  const { guiCommand } = await import('../gui/command.js');
  return guiCommand({
    log,
    configPath: (values.config as string | undefined) ?? '',
    noWindow: values['no-window'] === true,
    signal,
  } as Parameters<typeof guiCommand>[0]);
}
