/**
 * Field checks the dashboard form runs before it sends a tunnel to the client. The client's
 * TunnelManager validates again (and is the authority); these give instant feedback per field.
 * Pure and DOM-free, so the web app and Node tests share it.
 */

/** The form's raw text values. */
export interface TunnelDraft {
  name: string;
  remotePort: string;
  localHost: string;
  localPort: string;
  enabled: boolean;
}

/** A parsed tunnel, ready for the API. */
export interface TunnelInput {
  name: string;
  remotePort: number;
  localHost: string;
  localPort: number;
  enabled: boolean;
}

/** Field name -> error message; empty when the draft is valid. */
export type FieldErrors = Partial<Record<keyof TunnelDraft, string>>;

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
// A hostname (RFC 1123 labels), an IPv4 address, or an IPv6 address (loosely: hex digits and colons).
const HOST_RE =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6_RE = /^\[?[0-9A-Fa-f:.]+\]?$/;

function checkPort(text: string, label: string): string | undefined {
  const t = text.trim();
  if (t === '') return `${label} is required`;
  if (!/^\d+$/.test(t)) return `${label} must be a whole number`;
  const n = Number(t);
  if (n < 1 || n > 65535) return `${label} must be between 1 and 65535`;
  return undefined;
}

/** Checks every field of a draft; `others` are the names already taken (excluding the one edited). */
export function validateTunnelDraft(draft: TunnelDraft, others: readonly string[] = []): FieldErrors {
  const errors: FieldErrors = {};
  const name = draft.name.trim();
  if (name === '') errors.name = 'name is required';
  else if (!NAME_RE.test(name)) errors.name = 'name: use 1-64 letters, digits, dot, dash or underscore';
  else if (others.includes(name)) errors.name = `name: a tunnel called "${name}" already exists`;
  const rp = checkPort(draft.remotePort, 'remote port');
  if (rp) errors.remotePort = rp;
  const host = draft.localHost.trim();
  if (host === '') errors.localHost = 'local host is required';
  else if (!HOST_RE.test(host) && !(host.includes(':') && IPV6_RE.test(host))) {
    errors.localHost = 'local host must be a host name or an IP address';
  }
  const lp = checkPort(draft.localPort, 'local port');
  if (lp) errors.localPort = lp;
  return errors;
}

/** Turns a valid draft into the API's JSON shape. Call only when validateTunnelDraft found nothing. */
export function draftToInput(draft: TunnelDraft): TunnelInput {
  return {
    name: draft.name.trim(),
    remotePort: Number(draft.remotePort.trim()),
    localHost: draft.localHost.trim(),
    localPort: Number(draft.localPort.trim()),
    enabled: draft.enabled,
  };
}
