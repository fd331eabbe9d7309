/** The Events and Identity views. */
import type { ClientEvent, ClientSnapshot } from '../../client/api.js';
import { formatTime, peer } from './format.js';
import { CopyButton } from './widgets.js';

/** Events newest first, with runs of the same event (numbers aside) folded into one line with a count. */
export function collapseEvents(
  events: readonly ClientEvent[],
): { event: ClientEvent; count: number; first: number }[] {
  const out: { event: ClientEvent; count: number; first: number; key: string }[] = [];
  for (const e of [...events].reverse()) {
    const key = `${e.level}|${e.tunnel ?? ''}|${e.message.replace(/\d+/g, '#')}`;
    const last = out.at(-1);
    if (last && last.key === key) {
      last.count++;
      last.first = e.at;
    } else {
      out.push({ event: e, count: 1, first: e.at, key });
    }
  }
  return out;
}

export function EventsView({ snapshot }: { snapshot: ClientSnapshot }) {
  const rows = collapseEvents(snapshot.events);
  return (
    <>
      <h2 class="view-title">Events</h2>
      {rows.length === 0 ? (
        <p class="muted center">No events yet.</p>
      ) : (
        <ol class="events panel">
          {rows.map(({ event: e, count, first }) => (
            <li key={`${e.at}-${e.message}`} class={`event event-${e.level}`} data-count={count}>
              <time dateTime={new Date(e.at).toISOString()}>{formatTime(e.at)}</time>
              <span class={`level level-${e.level}`}>{e.level}</span>
              {e.tunnel && <span class="event-tunnel">{peer(e.tunnel)}</span>}
              <span class="event-msg">{peer(e.message)}</span>
              {count > 1 && (
                <span class="event-count" title={`${count} times since ${formatTime(first)}`}>
                  ×{count} since {formatTime(first)}
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

export function IdentityView({ snapshot }: { snapshot: ClientSnapshot }) {
  const id = snapshot.identity;
  return (
    <div class="panel">
      <h2>This client's identity</h2>
      <p class="muted">
        The server admits only keys on its allow-list. Give this public key line to the server's admin; the
        private key never leaves this machine.
      </p>
      <div class="kv">
        <span class="k">Public key</span>
        <div class="keyline">
          <code data-identity="key">{id.publicKeyLine}</code>
          <CopyButton text={id.publicKeyLine} label="public key" />
        </div>
        <span class="k">Fingerprint</span>
        <div class="keyline">
          <code data-identity="fingerprint">{id.fingerprint}</code>
          <CopyButton text={id.fingerprint} label="fingerprint" />
        </div>
        <span class="k">Server</span>
        <code>{snapshot.server.address}</code>
        <span class="k">Server key</span>
        <code>{snapshot.server.fingerprint ?? 'not seen yet'}</code>
      </div>
    </div>
  );
}
