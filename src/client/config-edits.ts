/**
 * The config file's JSON edited by operations, as ConfigSync replays the client's changes onto it:
 * the operations that turn one tunnel list into the next, each operation in words for the events list,
 * and each replayed touching only what changed (fields, defaults and order a person wrote stay).
 * Pure: no file access here.
 */
import {
  FIELD_LABELS,
  formatHostPort,
  parseClientConfig,
  parseTunnel,
  TUNNEL_DEFAULTS,
  TUNNEL_FIELDS,
  type TunnelEntry,
} from '../config/client-config.js';

/** A JSON object as read from the file. */
export type Raw = Record<string, unknown>;

/** One change made in the client, replayed onto the file's JSON. */
export type Op =
  | { kind: 'add'; tunnel: TunnelEntry }
  | { kind: 'remove'; name: string }
  | { kind: 'update'; name: string; tunnel: TunnelEntry }
  | { kind: 'settings'; patch: Raw };

/** Equality of JSON values, as the file would store them. */
export const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Replays one client-side change onto the file's JSON, touching only what changed. `warn` hears of a
 * change it could not replay (the tunnel is gone from the file).
 */
export function applyOp(raw: Raw, op: Op, warn: (message: string, tunnel: string) => void): Raw {
  const tunnels = Array.isArray(raw.tunnels) ? (raw.tunnels as Raw[]) : [];
  const find = (name: string) => tunnels.findIndex((t) => t.name === name);
  switch (op.kind) {
    case 'add': {
      const i = find(op.tunnel.name);
      if (i >= 0) tunnels[i] = patchTunnel(tunnels[i]!, op.tunnel);
      else tunnels.push(minimalTunnel(op.tunnel));
      break;
    }
    case 'remove': {
      const i = find(op.name);
      if (i >= 0) tunnels.splice(i, 1);
      break;
    }
    case 'update': {
      const i = find(op.name);
      if (i < 0) {
        warn(
          `"${op.name}" was removed from the config file meanwhile; the change to it is not saved`,
          op.name,
        );
        break;
      }
      tunnels[i] = patchTunnel(tunnels[i]!, op.tunnel);
      break;
    }
    case 'settings': {
      const parsed = parseClientConfig(raw);
      for (const [k, v] of Object.entries(op.patch)) {
        if (same(v, (parsed as Raw)[k])) continue;
        if (v === undefined) delete raw[k];
        else raw[k] = v;
      }
      return raw;
    }
  }
  if (tunnels.length > 0 || Array.isArray(raw.tunnels)) raw.tunnels = tunnels;
  return raw;
}

/**
 * The operations that turn one tunnel list into the next, by name; a name that disappeared where a
 * new one appeared at the same place is a rename (one update, so the file keeps its entry).
 */
export function diffTunnels(prev: readonly TunnelEntry[], next: readonly TunnelEntry[]): Op[] {
  const ops: Op[] = [];
  const prevNames = new Set(prev.map((t) => t.name));
  const nextNames = new Set(next.map((t) => t.name));
  const renamed = new Set<string>();
  prev.forEach((t, i) => {
    if (nextNames.has(t.name)) return;
    const there = next[i];
    if (there && !prevNames.has(there.name) && !renamed.has(there.name)) {
      renamed.add(there.name);
      ops.push({ kind: 'update', name: t.name, tunnel: there });
    } else {
      ops.push({ kind: 'remove', name: t.name });
    }
  });
  for (const t of next) {
    if (renamed.has(t.name)) continue;
    const old = prev.find((p) => p.name === t.name);
    if (!old) ops.push({ kind: 'add', tunnel: t });
    else if (!same(old, t)) ops.push({ kind: 'update', name: t.name, tunnel: t });
  }
  return ops;
}

/** A change in words for the events list: "disabled", "public port 8080 → 8081", … */
export function describeOp(
  op: Op,
  prev: readonly TunnelEntry[],
): { message: string; tunnel?: string } | undefined {
  const route = (t: TunnelEntry) =>
    `public port ${t.remotePort} → ${formatHostPort(t.localHost, t.localPort)}`;
  switch (op.kind) {
    case 'add':
      return { message: `added: ${route(op.tunnel)}`, tunnel: op.tunnel.name };
    case 'remove':
      return { message: 'deleted', tunnel: op.name };
    case 'settings':
      return {
        message: `settings changed: ${Object.keys(op.patch)
          .map((k) => FIELD_LABELS[k as keyof typeof FIELD_LABELS] ?? k)
          .join(', ')}`,
      };
    case 'update': {
      const old = prev.find((t) => t.name === op.name);
      if (!old) return { message: 'changed', tunnel: op.tunnel.name };
      const changed = TUNNEL_FIELDS.filter((f) => !same(old[f], op.tunnel[f]));
      if (changed.length === 1 && changed[0] === 'enabled') {
        return { message: op.tunnel.enabled ? 'enabled' : 'disabled', tunnel: op.name };
      }
      const parts = changed.map((f) =>
        f === 'name'
          ? `renamed from ${op.name}`
          : `${FIELD_LABELS[f]} ${JSON.stringify(old[f]) ?? 'unset'} → ${JSON.stringify(op.tunnel[f]) ?? 'unset'}`,
      );
      return { message: `changed: ${parts.join(', ')}`, tunnel: op.tunnel.name };
    }
  }
}

/** A new tunnel as a person would write it: required fields, and the others only when not default. */
function minimalTunnel(t: TunnelEntry): Raw {
  const out: Raw = {};
  const defaults = TUNNEL_DEFAULTS as Raw;
  for (const f of TUNNEL_FIELDS) {
    const v = t[f];
    if (v === undefined || (f in defaults && same(v, defaults[f]))) continue;
    out[f] = v;
  }
  return out;
}

/** A tunnel's JSON with only the fields whose value changed rewritten (the rest kept as written). */
function patchTunnel(raw: Raw, t: TunnelEntry): Raw {
  let old: TunnelEntry | undefined;
  try {
    old = parseTunnel(raw);
  } catch {
    old = undefined;
  }
  const out: Raw = { ...raw };
  for (const f of TUNNEL_FIELDS) {
    const v = t[f];
    if (old && same(v, old[f])) continue;
    if (v === undefined) delete out[f];
    else out[f] = v;
  }
  return out;
}

/** JSON text indented like the file it replaces, with its final newline (or lack of one). */
export function formatLike(previous: string, value: unknown): string {
  const indent = /\n([ \t]+)"/.exec(previous)?.[1] ?? '  ';
  return JSON.stringify(value, null, indent) + (previous.endsWith('\n') || previous === '' ? '\n' : '');
}
