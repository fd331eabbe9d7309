/**
 * The dashboard form's field checks: the form's text values turned into a tunnel and run through the
 * client's own tunnel schema (src/config/client-config.ts), so the form and the client can never
 * disagree. The client's TunnelManager checks again and is the authority (names and ports in use).
 * Pure and DOM-free, so the web app and Node tests share it.
 */
import {
  FIELD_LABELS,
  type TunnelConfig,
  type TunnelEntry,
  type TunnelField,
  tunnelFieldErrors,
} from '../config/index.js';

/** The form's raw values: text as typed, switches as booleans. */
export interface TunnelDraft {
  name: string;
  remotePort: string;
  localHost: string;
  localPort: string;
  enabled: boolean;
  /** true = LZ4, 'zstd', false = off (the config's values, kept as they are). */
  compress: TunnelEntry['compress'];
  /** '' = off. */
  proxyProtocol: '' | 'v1' | 'v2';
  /** Addresses or CIDR blocks separated by commas, spaces or new lines; '' = anyone. */
  permitFrom: string;
  /** '' = no limit. */
  maxConnections: string;
  /** '' = no limit. */
  rateLimit: string;
}

/** Field name -> error message; empty when the draft is valid. */
export type FieldErrors = Partial<Record<TunnelField, string>>;

/** What the form checks a draft against besides the schema. */
export interface DraftContext {
  /** Names of the other tunnels (the edited one excluded). */
  takenNames?: readonly string[];
  /** The public ports this client's key may open, as the server advertised them. */
  allowedPorts?: readonly { low: number; high: number }[];
}

/** An empty draft for a new tunnel, defaults filled in. */
export function emptyDraft(): TunnelDraft {
  return {
    name: '',
    remotePort: '',
    localHost: '127.0.0.1',
    localPort: '',
    enabled: true,
    compress: true,
    proxyProtocol: '',
    permitFrom: '',
    maxConnections: '',
    rateLimit: '',
  };
}

/** A draft showing an existing tunnel. */
export function draftOf(t: TunnelEntry): TunnelDraft {
  return {
    name: t.name,
    remotePort: String(t.remotePort),
    localHost: t.localHost,
    localPort: String(t.localPort),
    enabled: t.enabled,
    compress: t.compress,
    proxyProtocol: t.proxyProtocol ?? '',
    permitFrom: (t.permitFrom ?? []).join('\n'),
    maxConnections: t.maxConnections === undefined ? '' : String(t.maxConnections),
    rateLimit: t.rateLimit ?? '',
  };
}

/** Text that is a number becomes one; '' becomes absent; anything else stays text for the schema to name. */
function numberOrText(text: string): number | string | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

/** Turns a draft into the tunnel the API takes (absent optional fields left out). */
export function draftToInput(draft: TunnelDraft): TunnelConfig {
  const out: Record<string, unknown> = {
    name: draft.name.trim(),
    remotePort: numberOrText(draft.remotePort),
    localHost: draft.localHost.trim(),
    localPort: numberOrText(draft.localPort),
    enabled: draft.enabled,
    compress: draft.compress,
  };
  if (out.localHost === '') out.localHost = undefined;
  if (draft.proxyProtocol !== '') out.proxyProtocol = draft.proxyProtocol;
  const from = draft.permitFrom.split(/[\s,]+/).filter((s) => s !== '');
  if (from.length > 0) out.permitFrom = from;
  const max = numberOrText(draft.maxConnections);
  if (max !== undefined) out.maxConnections = max;
  if (draft.rateLimit.trim() !== '') out.rateLimit = draft.rateLimit.trim();
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as TunnelConfig;
}

/** Checks every field of a draft with the client's schema, then the names and ports in use. */
export function validateTunnelDraft(draft: TunnelDraft, ctx: DraftContext = {}): FieldErrors {
  const input = draftToInput(draft);
  // An empty local host is "required" in the form (the schema would quietly use the default).
  const errors: FieldErrors =
    draft.localHost.trim() === ''
      ? { ...tunnelFieldErrors(input), localHost: `${FIELD_LABELS.localHost} is required` }
      : tunnelFieldErrors(input);
  if (errors.name === undefined && ctx.takenNames?.includes(input.name)) {
    errors.name = `a tunnel called "${input.name}" already exists`;
  }
  const port = input.remotePort;
  if (errors.remotePort === undefined && ctx.allowedPorts && ctx.allowedPorts.length > 0) {
    if (!ctx.allowedPorts.some((r) => port >= r.low && port <= r.high)) {
      errors.remotePort = `the server lets this client open only ports ${formatRanges(ctx.allowedPorts)}`;
    }
  }
  return errors;
}

/** "8000-9000, 15432" */
export function formatRanges(ranges: readonly { low: number; high: number }[]): string {
  return ranges.map((r) => (r.low === r.high ? String(r.low) : `${r.low}-${r.high}`)).join(', ');
}
