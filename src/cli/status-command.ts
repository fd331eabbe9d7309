/**
 * `mtt status [--socket PATH] [--json]`: asks the mtt server on this machine, through its admin
 * socket (src/server/admin-socket.ts), what it is doing, and prints it as aligned text for a person
 * or as the ServerStatus JSON (src/server/admin-status.ts) for scripts. Every string in the answer is
 * treated as peer text: escaped before it reaches the terminal.
 */
import { connect } from 'node:net';
import { defaultPaths } from '../config/paths.js';
import type { AdminAnswer } from '../server/admin-socket.js';
import type { ServerStatus, StatusRefusal, StatusTunnel } from '../server/admin-status.js';
import { escapeControls, escapeJsonControls } from '../util/escape.js';
import { parseCommand } from './parse-command.js';
import { UsageError } from './usage-error.js';

const STATUS_HELP = `Usage: mtt status [--socket PATH] [--json]

Shows what the mtt server on this machine is doing: its client session, each tunnel's connections,
bytes, current rates and limits, and the recent refusals. It asks the server's admin socket (a
Unix socket with mode 0600, so run it as the server's user or as root).

  --socket PATH   the server's admin socket (default ${defaultPaths.adminSocket()}; the server's
                  --admin-socket or "adminSocket" field)
  --json          print the status as JSON (the shape is in the README, "Status of a running server")
`;

/** How long mtt status waits for the server's answer. */
export const STATUS_TIMEOUT_MS = 5000;
/** The largest answer read. */
const MAX_ANSWER = 8 * 1024 * 1024;

/** Asks the admin socket at `path` for the status; UsageError with the fix when it cannot. */
export function askStatus(path: string, timeoutMs = STATUS_TIMEOUT_MS): Promise<ServerStatus> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new UsageError(message));
    };
    const timer = setTimeout(
      () =>
        fail(
          `the mtt server on ${path} did not answer within ${timeoutMs / 1000} s; is it stopped (kill -STOP) or overloaded?`,
        ),
      timeoutMs,
    );
    socket.once('connect', () => socket.write(`${JSON.stringify({ cmd: 'status' })}\n`));
    socket.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_ANSWER)
        return fail(`${path} answered more than ${MAX_ANSWER} bytes; is it an mtt server's admin socket?`);
      chunks.push(c);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      socket.destroy();
      let answer: AdminAnswer;
      try {
        answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdminAnswer;
      } catch {
        return fail(`${path} did not answer with mtt's status; is it an mtt server's admin socket?`);
      }
      if (answer?.ok === true && typeof answer.status === 'object' && answer.status !== null) {
        resolve(answer.status as ServerStatus);
        return;
      }
      const why = answer?.ok === false && typeof answer.error === 'string' ? answer.error : 'no reason given';
      fail(`the mtt server on ${path} refused the request: ${why}`);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK')
        fail(`no mtt server answers on ${path}: start one with mtt server, or pass --socket`);
      else if (err.code === 'EACCES' || err.code === 'EPERM')
        fail(`permission denied on ${path}: run mtt status as the user the server runs as, or as root`);
      else fail(`cannot reach the mtt server on ${path}: ${err.code ?? err.message}`);
    });
  });
}

/** mtt status */
export async function runStatus(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    socket: { type: 'string', short: 's' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(STATUS_HELP);
    return 0;
  }
  const socket = values.socket as string | undefined;
  if (socket === '') throw new UsageError('--socket needs a path, e.g. --socket /var/lib/mtt/admin.sock');
  const status = await askStatus(socket ?? defaultPaths.adminSocket());
  process.stdout.write(
    values.json ? `${escapeJsonControls(JSON.stringify(status, null, 2))}\n` : formatStatus(status),
  );
  return 0;
}

// ---- the text view ----

const e = (v: unknown) => escapeControls(String(v ?? ''));

/** 1234567 -> "1.2 MB" (powers of 1000, like the rates people write: "10MB/s"). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function formatRate(n: number): string {
  return `${formatBytes(n)}/s`;
}

/** Seconds -> "12 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "2026-12-02T04:12:01.123Z" -> "2026-12-02 04:12:01". */
function utc(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

/** Rows as columns padded to the widest cell (the last column is not padded). */
export function table(rows: string[][], indent = '  '): string {
  const widths: number[] = [];
  for (const r of rows) for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}

function tunnelRow(t: StatusTunnel): string[] {
  const refused = t.refused.not_permitted + t.refused.max_connections;
  return [
    e(t.name),
    String(t.port),
    e(t.state),
    String(t.connections.open),
    String(t.connections.total),
    formatBytes(t.bytes.in),
    formatBytes(t.bytes.out),
    formatRate(t.rate.in),
    formatRate(t.rate.out),
    t.limits.maxConnections > 0 ? String(t.limits.maxConnections) : '-',
    t.limits.rateLimit > 0 ? formatRate(t.limits.rateLimit) : '-',
    String(refused),
  ];
}

function refusalRow(r: StatusRefusal): string[] {
  const what = r.tunnel !== null ? `${e(r.tunnel)}:${r.port ?? ''}` : r.client !== null ? e(r.client) : '-';
  return [utc(e(r.at)), e(r.kind), e(r.reason), r.peer === null ? '-' : e(r.peer), what, String(r.count)];
}

/** The text view of a status (what `mtt status` prints). */
export function formatStatus(s: ServerStatus): string {
  const now = Date.parse(s.now);
  const age = (iso: string) => formatAge((now - Date.parse(iso)) / 1000);
  const out: string[] = [];
  out.push(
    `mtt server on ${e(s.server.control)}, pid ${s.server.pid}, up ${age(s.server.startedAt)}`,
    table([
      ['server key', e(s.server.fingerprint)],
      ['allow-list', `${s.server.allowedKeys} key${s.server.allowedKeys === 1 ? '' : 's'}`],
    ]),
    '',
    'Session',
  );
  if (s.session) {
    const c = s.session.channels;
    out.push(
      table([
        ['client', s.session.comment === '' ? '(no comment)' : e(s.session.comment)],
        ['fingerprint', e(s.session.fingerprint)],
        ['from', e(s.session.peer)],
        ['since', `${utc(e(s.session.since))} UTC (${age(s.session.since)})`],
        ...(c
          ? [
              [
                'data channels',
                `${c.active} active, ${c.idle} idle, ${c.proving} proving, ${c.waiting} visitors waiting`,
              ],
            ]
          : []),
      ]),
    );
  } else {
    out.push('  no client connected');
  }
  out.push('', 'Tunnels (IN: from visitors, OUT: to them; rates over the last 5 s)');
  if (s.tunnels.length === 0) out.push('  none opened since the server started');
  else
    out.push(
      table([
        [
          'NAME',
          'PORT',
          'STATE',
          'OPEN',
          'TOTAL',
          'IN',
          'OUT',
          'IN/S',
          'OUT/S',
          'MAX CONN',
          'RATE LIMIT',
          'REFUSED',
        ],
        ...s.tunnels.map(tunnelRow),
      ]),
    );
  out.push('', `Recent refusals (oldest first, times in UTC)`);
  if (s.recentRefusals.length === 0) out.push('  none');
  else
    out.push(
      table([
        ['TIME', 'KIND', 'REASON', 'FROM', 'TUNNEL OR KEY', 'COUNT'],
        ...s.recentRefusals.map(refusalRow),
      ]),
    );
  return `${out.join('\n')}\n`;
}
