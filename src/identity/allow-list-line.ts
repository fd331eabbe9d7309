/**
 * One line of the allow-list, parsed: `[options] ssh-ed25519 AAAA… [comment]`, where the options are
 * permitlisten, permitfrom, maxconnections and ratelimit (OpenSSH's authorized_keys quoting). A bad
 * line is a problem and its fix, never an exception; allow-list.ts reads and edits the file.
 */
import { parseCidr } from '../config/host-port.js';
import { parseRate, rateProblem } from '../config/rate.js';
import { IdentityError } from './identity-error.js';
import type { PortRange } from './port-range.js';
import { ANY_PORT, parsePortRanges } from './port-range.js';
import { checkKeyFields, ED25519_KEY_TYPE, fingerprint } from './public-key.js';

/** A block of visitor addresses (CIDR), as permitfrom gives it. */
export interface AddressBlockOption {
  family: 4 | 6;
  prefix: number;
  /** The network address, 4 or 16 bytes. */
  address: Buffer;
  /** As written ("203.0.113.0/24"). */
  text: string;
}

/** Per-key options from the line's option prefix. */
export interface AllowListOptions {
  /** Ports this key may listen on; [1-65535] when the line has no permitlisten (the server's own limits still apply). */
  permitListen: PortRange[];
  /**
   * Visitor addresses this key's tunnels accept (permitfrom); undefined when the line has none
   * (any visitor). A tunnel's own permitFrom can only narrow it.
   */
  permitFrom?: AddressBlockOption[];
  /** The most connections each tunnel of this key may have open at once (maxconnections); none when absent. */
  maxConnections?: number;
  /** The most bytes per second each way through each tunnel of this key (ratelimit); none when absent. */
  rateLimit?: number;
}

/** One allowed key. */
export interface AllowListEntry {
  /** The raw 32-byte Ed25519 public key. */
  publicRaw: Buffer;
  /** `SHA256:…`, as ssh-keygen -l prints it. */
  fingerprint: string;
  /** Text after the key data ('' when absent). */
  comment: string;
  /** Parsed options. */
  options: AllowListOptions;
  /** 1-based line number in the source. */
  line: number;
}

/** A parsed line, or what is wrong with it and how to fix it. */
export type LineResult =
  | { ok: true; entry: Omit<AllowListEntry, 'line'> }
  | { ok: false; problem: string; fix: string };

const OPTION_FIX =
  'the options are permitlisten="PORT", "LOW-HIGH" or "*", permitfrom="CIDR,…", maxconnections="N" and ratelimit="10MB/s"; remove the others';

/** Parse one non-blank, non-comment line. */
export function parseAllowListLine(line: string): LineResult {
  let rest = line;
  let permitListen: PortRange[] | undefined;
  let permitFrom: AddressBlockOption[] | undefined;
  let maxConnections: number | undefined;
  let rateLimit: number | undefined;
  const first = /^\S+/.exec(rest)?.[0] ?? '';
  // A line starts with options unless its first word is a key type or key data (as in authorized_keys).
  if (first !== ED25519_KEY_TYPE && !looksLikeKeyType(first) && !first.startsWith('AAAA')) {
    const options = splitOptions(rest);
    if (!options.ok) return options;
    for (const option of options.list) {
      const lower = option.name.toLowerCase();
      if (lower === 'maxconnections') {
        const v = option.value?.trim() ?? '';
        if (!/^\d{1,10}$/.test(v) || Number(v) < 1 || Number(v) > 0xffff_ffff) {
          return {
            ok: false,
            problem: `maxconnections="${option.value ?? ''}" is not a whole number from 1 to 4294967295`,
            fix: 'write maxconnections="100" (connections open at once per tunnel)',
          };
        }
        maxConnections = Number(v);
        continue;
      }
      if (lower === 'ratelimit') {
        const problem = rateProblem(option.value ?? '', 'ratelimit');
        if (problem) return { ok: false, problem, fix: '' };
        rateLimit = parseRate(option.value ?? '');
        continue;
      }
      if (lower === 'permitfrom') {
        const blocks = parsePermitFrom(option.value);
        if (!Array.isArray(blocks)) return blocks;
        permitFrom = [...(permitFrom ?? []), ...blocks];
        continue;
      }
      if (option.name.toLowerCase() !== 'permitlisten') {
        return { ok: false, problem: `unknown option "${option.name}"`, fix: OPTION_FIX };
      }
      if (option.value === undefined) {
        return { ok: false, problem: 'permitlisten needs a value', fix: 'write permitlisten="8080"' };
      }
      try {
        permitListen = [...(permitListen ?? []), ...parsePortRanges(option.value)];
      } catch (error) {
        if (!(error instanceof IdentityError)) throw error;
        // The port parser's message already names the fix.
        return { ok: false, problem: `in permitlisten="${option.value}", ${error.message}`, fix: '' };
      }
    }
    rest = options.rest.trimStart();
    if (rest === '') {
      return {
        ok: false,
        problem: 'options are not followed by a key',
        fix: 'add "ssh-ed25519 AAAA…" after them',
      };
    }
  }
  const match = /^(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(.*))?$/.exec(rest);
  const checked = checkKeyFields(match?.[1] ?? '', match?.[2]);
  if (!checked.ok) return checked;
  return {
    ok: true,
    entry: {
      publicRaw: checked.publicRaw,
      fingerprint: fingerprint(checked.publicRaw),
      comment: (match?.[3] ?? '').trim(),
      options: {
        permitListen: permitListen ?? [{ ...ANY_PORT }],
        ...(permitFrom ? { permitFrom } : {}),
        ...(maxConnections !== undefined ? { maxConnections } : {}),
        ...(rateLimit !== undefined ? { rateLimit } : {}),
      },
    },
  };
}

/** permitfrom="203.0.113.0/24,2001:db8::/32": CIDR blocks or single addresses, comma-separated. */
function parsePermitFrom(
  value: string | undefined,
): AddressBlockOption[] | { ok: false; problem: string; fix: string } {
  if (value === undefined || value.trim() === '') {
    return {
      ok: false,
      problem: 'permitfrom needs a value',
      fix: 'write permitfrom="203.0.113.0/24,2001:db8::/32" (addresses or CIDR blocks)',
    };
  }
  const out: AddressBlockOption[] = [];
  for (const part of value.split(',')) {
    const text = part.trim();
    const block = parseCidr(text);
    if (typeof block === 'string')
      return { ok: false, problem: `in permitfrom="${value}", ${block}`, fix: '' };
    out.push({ family: block.family, prefix: block.prefix, address: Buffer.from(block.bytes), text });
  }
  return out;
}

/** A line's problem and fix as one sentence. */
export function describe(failure: { problem: string; fix: string }): string {
  return failure.fix === '' ? failure.problem : `${failure.problem}; ${failure.fix}`;
}

function looksLikeKeyType(word: string): boolean {
  return /^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+$/.test(word);
}

type Option = { name: string; value: string | undefined };

/** Split `name[="value"],…` up to the first unquoted blank; `\"` escapes a quote inside a value. */
function splitOptions(
  text: string,
): { ok: true; list: Option[]; rest: string } | { ok: false; problem: string; fix: string } {
  const list: Option[] = [];
  let i = 0;
  for (;;) {
    const name = /^[A-Za-z0-9_-]+/.exec(text.slice(i))?.[0];
    if (name === undefined) {
      return {
        ok: false,
        problem: `unexpected text "${text.slice(i, i + 20)}" where an option or key type should be`,
        fix: 'lines look like: [permitlisten="8080"] ssh-ed25519 AAAA… comment',
      };
    }
    i += name.length;
    let value: string | undefined;
    if (text[i] === '=') {
      if (text[i + 1] !== '"') {
        return {
          ok: false,
          problem: `the value of ${name} is not in double quotes`,
          fix: `write ${name}="…"`,
        };
      }
      i += 2;
      value = '';
      for (;;) {
        const ch = text[i];
        if (ch === undefined) {
          return {
            ok: false,
            problem: `the value of ${name} has no closing quote`,
            fix: 'add the closing "',
          };
        }
        if (ch === '"') break;
        if (ch === '\\' && text[i + 1] === '"') {
          value += '"';
          i += 2;
          continue;
        }
        value += ch;
        i += 1;
      }
      i += 1;
    }
    list.push({ name, value });
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    if (i >= text.length || text[i] === ' ' || text[i] === '\t')
      return { ok: true, list, rest: text.slice(i) };
    return {
      ok: false,
      problem: `unexpected "${text[i]}" after option ${name}`,
      fix: 'separate options with commas and put a space before the key type',
    };
  }
}
