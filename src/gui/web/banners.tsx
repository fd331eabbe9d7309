/** The banners above the views: what the connection to the server is doing, and when mtt is gone. */
import type { ClientSnapshot, ConnectionState } from '../../client/index.js';
import { api, type LinkState } from './api.js';
import { formatDuration, formatTime, peer } from './format.js';
import { CopyButton, useNow } from './widgets.js';

/** The one offline state: mtt is not there, so nothing on the page is live or usable. */
export function OfflineBanner({ link, lastUpdate }: { link: LinkState; lastUpdate: number }) {
  const since = lastUpdate > 0 ? ` The page shows the state of ${formatTime(lastUpdate)}.` : '';
  const text =
    link === 'quit'
      ? `mtt has quit.${since} Start mtt gui again to bring the dashboard back.`
      : link === 'closed'
        ? `This page lost its session with mtt (mtt was restarted).${since} Open the dashboard again from the tray icon, or use the link mtt gui printed.`
        : link === 'connecting'
          ? 'Connecting to mtt…'
          : `mtt does not answer.${since} This page reconnects by itself when mtt is back.`;
  return (
    <div class="banner banner-offline" role="alert" data-offline={link}>
      <strong>{link === 'connecting' ? 'Connecting' : 'Not connected to mtt'}</strong>
      <span class="banner-detail">{text}</span>
    </div>
  );
}

/** What the control channel is doing, in words, with the fix when the server refused us. */
export function ConnectionBanner(p: { snapshot: ClientSnapshot; clockSkew: number }) {
  const c: ConnectionState = p.snapshot.connection;
  const counting = 'nextTryAt' in c && c.nextTryAt !== undefined;
  useNow(counting); // re-render every second while a countdown shows
  const nextIn = (at: number) =>
    formatDuration(Math.max(0, Math.ceil((at - (Date.now() + p.clockSkew)) / 1000)));
  const addr = p.snapshot.server.address;
  const reconnect = (
    <button type="button" class="btn btn-small" onClick={() => void api.reconnect().catch(() => {})}>
      Reconnect now
    </button>
  );
  switch (c.kind) {
    case 'connected':
      return (
        <div class="banner banner-ok" role="status" data-connection="connected">
          <strong>Connected</strong> to <code>{addr}</code>
          <span class="banner-detail">
            server key <code class="fp">{c.serverFingerprint}</code> · since {formatTime(c.since)}
          </span>
        </div>
      );
    case 'connecting':
      return (
        <div class="banner banner-warn" role="status" data-connection="connecting">
          <strong>Connecting</strong> to <code>{addr}</code>
          {c.attempt > 1 ? ` (attempt ${c.attempt})` : ''}…
        </div>
      );
    case 'reconnecting':
      return (
        <div class="banner banner-warn" role="status" data-connection="reconnecting">
          <div class="banner-row">
            <span>
              <strong>Reconnecting</strong> to <code>{addr}</code> — next try in {nextIn(c.nextTryAt)}
            </span>
            {reconnect}
          </div>
          <span class="banner-detail">
            attempt {c.attempt}: {peer(c.lastError)}
          </span>
        </div>
      );
    case 'rejected':
      return (
        <div class="banner banner-error" role="alert" data-connection="rejected">
          <div class="banner-row">
            <span>
              <strong>Rejected</strong> by <code>{addr}</code>: {peer(c.message || c.reason)}
              {c.nextTryAt !== undefined ? ` — next try in ${nextIn(c.nextTryAt)}` : ' — not retrying'}
            </span>
            {c.nextTryAt !== undefined && reconnect}
          </div>
          {c.reason === 'unknown_key' && (
            <div class="keybox">
              <p>
                The server does not know this client's key. Ask the server's admin to add this line to its
                allow-list (<code>authorized_keys</code>):
              </p>
              <div class="keyline">
                <code data-keyline>{p.snapshot.identity.publicKeyLine}</code>
                <CopyButton text={p.snapshot.identity.publicKeyLine} label="public key line" />
              </div>
            </div>
          )}
          {c.reason === 'server_key_mismatch' && (
            <p class="banner-detail">
              The server's key is not the one this client pinned. If the server was reinstalled on purpose,
              update the pinned server key in Settings; otherwise someone may be in the middle.
            </p>
          )}
          {c.reason === 'in_use' && (
            <p class="banner-detail">
              Another client with this key is connected. Stop it, or give this client its own key.
            </p>
          )}
        </div>
      );
    case 'stopped':
      return (
        <div class="banner banner-muted" role="status" data-connection="stopped">
          The client is stopped.
        </div>
      );
  }
}

/** Shown while every tunnel is paused. */
export function PausedBanner() {
  return (
    <div class="banner banner-muted" role="status" data-paused>
      <div class="banner-row">
        <span>
          <strong>Paused:</strong> every tunnel is closed on the server; the config is unchanged.
        </span>
        <button type="button" class="btn btn-small" onClick={() => void api.setPaused(false).catch(() => {})}>
          Resume all
        </button>
      </div>
    </div>
  );
}
