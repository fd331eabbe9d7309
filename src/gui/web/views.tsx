/** The Events and Identity views. */
import type { ClientSnapshot } from '../../client/index.js';
import { collapseEvents } from '../event-groups.js';
import { formatTime, peer } from './format.js';
import { CopyButton } from './widgets.js';

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
