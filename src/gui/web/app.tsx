/** The dashboard page: connection banner, tunnel cards, identity and events views. */
import { useState } from 'preact/hooks';
import type { ClientSnapshot, ConnectionState, TunnelView } from '../../client/api.js';
import { formatHostPort } from '../../config/host-port.js';
import type { DashboardUpdate, TunnelRates } from '../dashboard-types.js';
import { ApiFailure, api, type LinkState, useDashboardFeed } from './api.js';
import { formatBytes, formatDuration, formatRate, formatTime } from './format.js';
import { TunnelForm } from './tunnel-form.js';
import { CopyButton, Sparkline, StatusPill, useNow } from './widgets.js';

type Tab = 'tunnels' | 'identity' | 'events';

export function App() {
  const feed = useDashboardFeed();
  const [tab, setTab] = useState<Tab>('tunnels');
  const update = feed.update;
  if (!update) {
    return (
      <main class="page">
        <Header />
        <LinkBanner link={feed.link === 'open' ? 'connecting' : feed.link} />
        <p class="muted center">Loading…</p>
      </main>
    );
  }
  const s = update.snapshot;
  return (
    <main class="page">
      <Header />
      <LinkBanner link={feed.link} />
      <ConnectionBanner snapshot={s} update={update} receivedAt={feed.receivedAt} />
      <div class="tabs" role="tablist">
        <TabButton id="tunnels" tab={tab} setTab={setTab} label={`Tunnels (${s.tunnels.length})`} />
        <TabButton id="identity" tab={tab} setTab={setTab} label="Identity" />
        <TabButton id="events" tab={tab} setTab={setTab} label={`Events (${s.events.length})`} />
      </div>
      {tab === 'tunnels' && <TunnelsView tunnels={s.tunnels} rates={update.rates} />}
      {tab === 'identity' && <IdentityView snapshot={s} />}
      {tab === 'events' && <EventsView snapshot={s} />}
    </main>
  );
}

function Header() {
  return (
    <header class="topbar">
      <img src="/favicon.svg" alt="" width="28" height="28" />
      <h1>MiniTCPTunnel</h1>
    </header>
  );
}

function TabButton(p: { id: Tab; tab: Tab; setTab: (t: Tab) => void; label: string }) {
  return (
    <button
      type="button"
      role="tab"
      class="tab"
      aria-selected={p.tab === p.id}
      id={`tab-${p.id}`}
      onClick={() => p.setTab(p.id)}
    >
      {p.label}
    </button>
  );
}

function LinkBanner({ link }: { link: LinkState }) {
  if (link === 'open' || link === 'connecting') return null;
  return (
    <div class="banner banner-error" role="status">
      {link === 'lost'
        ? 'Lost the link to the dashboard server; retrying…'
        : 'The dashboard was closed. Open it again from the tray icon or run mtt gui.'}
    </div>
  );
}

/** What the control channel is doing, in words, with the fix when the server refused us. */
function ConnectionBanner(p: { snapshot: ClientSnapshot; update: DashboardUpdate; receivedAt: number }) {
  const c: ConnectionState = p.snapshot.connection;
  const counting = 'nextTryAt' in c && c.nextTryAt !== undefined;
  useNow(counting); // re-render every second while a countdown shows
  // nextTryAt is on the client's clock: shift by how long ago the update arrived.
  const serverNow = p.update.now + (Date.now() - p.receivedAt);
  const nextIn = (at: number) => formatDuration(Math.max(0, Math.ceil((at - serverNow) / 1000)));
  const addr = p.snapshot.server.address;
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
          <strong>Reconnecting</strong> to <code>{addr}</code> — next try in {nextIn(c.nextTryAt)}
          <span class="banner-detail">
            attempt {c.attempt}: {c.lastError}
          </span>
        </div>
      );
    case 'rejected':
      return (
        <div class="banner banner-error" role="alert" data-connection="rejected">
          <strong>Rejected</strong> by <code>{addr}</code>: {c.message || c.reason}
          {c.nextTryAt !== undefined ? ` — next try in ${nextIn(c.nextTryAt)}` : ' — not retrying'}
          {c.reason === 'unknown_key' && (
            <div class="keybox">
              <p>
                The server does not know this client's key. Ask the server's admin to add this line to its
                allow-list (<code>authorized_keys</code>):
              </p>
              <div class="keyline">
                <code data-keyline>{p.snapshot.identity.publicKeyLine}</code>
                <CopyButton text={p.snapshot.identity.publicKeyLine} label="Copy public key line" />
              </div>
            </div>
          )}
          {c.reason === 'server_key_mismatch' && (
            <p class="banner-detail">
              The server's key is not the one this client pinned. If the server was reinstalled on purpose,
              update the pinned fingerprint in the client config; otherwise someone may be in the middle.
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

function TunnelsView({ tunnels, rates }: { tunnels: TunnelView[]; rates: Record<string, TunnelRates> }) {
  const [form, setForm] = useState<{ editing: TunnelView | undefined } | undefined>();
  const names = tunnels.map((t) => t.name);
  return (
    <section aria-labelledby="tab-tunnels">
      <div class="toolbar">
        <button type="button" class="btn btn-primary" onClick={() => setForm({ editing: undefined })}>
          + Add tunnel
        </button>
      </div>
      {tunnels.length === 0 && (
        <p class="muted center">No tunnels yet. Add one to publish a local service.</p>
      )}
      <div class="cards">
        {tunnels.map((t) => (
          <TunnelCard
            key={t.name}
            tunnel={t}
            rates={rates[t.name] ?? { in: [], out: [] }}
            onEdit={() => setForm({ editing: t })}
          />
        ))}
      </div>
      {form && (
        <TunnelForm
          editing={form.editing}
          takenNames={names.filter((n) => n !== form.editing?.name)}
          onSubmit={(input) =>
            form.editing ? api.updateTunnel(form.editing.name, input) : api.addTunnel(input)
          }
          onClose={() => setForm(undefined)}
        />
      )}
    </section>
  );
}

function TunnelCard(p: { tunnel: TunnelView; rates: TunnelRates; onEdit: () => void }) {
  const t = p.tunnel;
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const run = async (action: () => Promise<void>) => {
    setError(undefined);
    try {
      await action();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : String(err));
    }
  };
  const rateIn = p.rates.in.at(-1) ?? 0;
  const rateOut = p.rates.out.at(-1) ?? 0;
  return (
    <article class={`card card-${t.status}`} data-tunnel={t.name} aria-label={`Tunnel ${t.name}`}>
      <header class="card-head">
        <h3>{t.name}</h3>
        <StatusPill status={t.status} />
      </header>
      <dl class="route">
        <dt>Public</dt>
        <dd>
          <code data-field="public">{t.publicAddress || `:${t.remotePort}`}</code>
        </dd>
        <dt>Local</dt>
        <dd>
          <code data-field="local">{formatHostPort(t.localHost, t.localPort)}</code>
        </dd>
      </dl>
      {t.status === 'error' && (
        <p class="card-error" data-field="error">
          {t.error ?? 'unknown error'}
        </p>
      )}
      <div class="stats">
        <div class="stat">
          <span class="stat-label">Connections</span>
          <span class="stat-value" data-stat="active">
            {t.activeConnections}
          </span>
          <span class="stat-sub" data-stat="total">
            {t.totalConnections} total
            {t.failedDials > 0 ? ` · ${t.failedDials} failed` : ''}
          </span>
        </div>
        <div class="stat">
          <span class="stat-label">
            <span class="swatch swatch-in" aria-hidden="true" /> In
          </span>
          <span class="stat-value" data-stat="bytes-in">
            {formatBytes(t.bytesIn)}
          </span>
          <span class="stat-sub">{formatRate(rateIn)}</span>
        </div>
        <div class="stat">
          <span class="stat-label">
            <span class="swatch swatch-out" aria-hidden="true" /> Out
          </span>
          <span class="stat-value" data-stat="bytes-out">
            {formatBytes(t.bytesOut)}
          </span>
          <span class="stat-sub">{formatRate(rateOut)}</span>
        </div>
        <Sparkline rin={p.rates.in} rout={p.rates.out} label={`Transfer rate of ${t.name}`} />
      </div>
      {error && (
        <p class="card-error" role="alert">
          {error}
        </p>
      )}
      <footer class="card-actions">
        <label class="switch">
          <input
            type="checkbox"
            role="switch"
            checked={t.enabled}
            aria-checked={t.enabled}
            aria-label={`Enabled ${t.name}`}
            onChange={(e) => {
              const enabled = (e.currentTarget as HTMLInputElement).checked;
              void run(() => api.setEnabled(t.name, enabled));
            }}
          />
          <span class="slider" aria-hidden="true" />
          <span>{t.enabled ? 'Enabled' : 'Disabled'}</span>
        </label>
        <span class="spacer" />
        {confirming ? (
          <>
            <span class="muted">Delete?</span>
            <button
              type="button"
              class="btn btn-danger btn-small"
              onClick={() => run(() => api.removeTunnel(t.name))}
            >
              Delete {t.name}
            </button>
            <button type="button" class="btn btn-small" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <>
            <button type="button" class="btn btn-small" onClick={p.onEdit}>
              Edit
            </button>
            <button type="button" class="btn btn-small" onClick={() => setConfirming(true)}>
              Delete
            </button>
          </>
        )}
      </footer>
    </article>
  );
}

function IdentityView({ snapshot }: { snapshot: ClientSnapshot }) {
  const id = snapshot.identity;
  return (
    <section class="panel" aria-labelledby="tab-identity">
      <h2>This client's identity</h2>
      <p class="muted">
        The server admits only keys on its allow-list. Give this public key line to the server's admin; the
        private key never leaves this machine.
      </p>
      <div class="kv">
        <span class="k">Public key</span>
        <div class="keyline">
          <code data-identity="key">{id.publicKeyLine}</code>
          <CopyButton text={id.publicKeyLine} label="Copy public key" />
        </div>
        <span class="k">Fingerprint</span>
        <div class="keyline">
          <code data-identity="fingerprint">{id.fingerprint}</code>
          <CopyButton text={id.fingerprint} label="Copy fingerprint" />
        </div>
        <span class="k">Server</span>
        <code>{snapshot.server.address}</code>
        <span class="k">Pinned server key</span>
        <code>{snapshot.server.fingerprint ?? 'not pinned yet'}</code>
      </div>
    </section>
  );
}

function EventsView({ snapshot }: { snapshot: ClientSnapshot }) {
  const events = [...snapshot.events].reverse();
  if (events.length === 0) return <p class="muted center">No events yet.</p>;
  return (
    <section class="panel" aria-labelledby="tab-events">
      <ol class="events">
        {events.map((e, i) => (
          <li key={`${e.at}-${i}`} class={`event event-${e.level}`}>
            <time>{formatTime(e.at)}</time>
            <span class={`level level-${e.level}`}>{e.level}</span>
            {e.tunnel && <span class="event-tunnel">{e.tunnel}</span>}
            <span class="event-msg">{e.message}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
