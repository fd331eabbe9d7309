/** Strict flag parsing shared by every command (kept out of main.ts so commands never import the dispatcher). */
import { parseArgs } from 'node:util';

/** Flags of one command: name -> string or boolean, with an optional one-letter alias. */
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** Flags every command takes: --help, and --log-level/--log-format (see logging.ts). */
export const COMMON_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const satisfies FlagSpec;

/** Parsed flags: a string, a boolean or (for `multiple`) a list of strings. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** parseArgs, strict, with COMMON_FLAGS added; unknown flags throw ERR_PARSE_ARGS_UNKNOWN_OPTION. */
export function parseCommand(
  argv: string[],
  options: FlagSpec,
  allowPositionals = false,
): { values: FlagValues; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...COMMON_FLAGS, ...options },
    allowPositionals,
    strict: true,
  });
  return { values: values as FlagValues, positionals };
}

/** The value of `--name V` or `--name=V` in raw argv, before parsing (to report a parse error in the asked format). */
export function peekFlag(argv: readonly string[], name: string): string | undefined {
  for (let i = argv.length - 1; i >= 0; i--) {
    const a = argv[i]!;
    if (a === `--${name}`) return argv[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}
