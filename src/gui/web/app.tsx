/**
 * The dashboard page: a header with Pause and Quit, the connection banner, and four views in an
 * accessible tab pattern (Tunnels, Events, Identity, Settings). When mtt is gone the page shows one
 * offline state and nothing stays clickable.
 */
import { useRef, useState } from 'preact/hooks';
import type { TunnelView } from '../../client/index.js';
import type { DashboardUpdate, TunnelRates } from '../dashboard-types.js';
import { formatRanges } from '../tunnel-validation.js';
import { api, useDashboardFeed } from './api.js';
import { ConnectionBanner, OfflineBanner, PausedBanner } from './banners.js';
import { SettingsView } from './settings-view.js';
import { SetupView } from './setup-view.js';
import { TunnelCard } from './tunnel-card.js';
import { TunnelForm } from './tunnel-form.js';
import { EventsView, IdentityView } from './views.js';

type Tab = 'tunnels' | 'events' | 'identity' | 'settings';

export function App() {
  const feed = useDashboardFeed();
  const [tab, setTab] = useState<Tab>('tunnels');
  const [quitting, setQuitting] = useState(false);
  const update = feed.update;
  const offline = feed.link !== 'open';
  if (!update) {
    return (
      <>
        <Header />
        <main class="page" id="main">
          <OfflineBanner link={feed.link} lastUpdate={0} />
        </main>
      </>
    );
  }
  if (update.setup) {
    return (
      <>
        <Header />
        <main class={`page${offline ? ' is-offline' : ''}`} id="main">
          {offline && <OfflineBanner link={feed.link} lastUpdate={feed.receivedAt} />}
          <div class="live" inert={offline}>
            <SetupView setup={update.setup} />
          </div>
        </main>
      </>
    );
  }
  const s = update.snapshot;
  // Server times (countdowns) on the page's clock.
  const clockSkew = update.now - feed.receivedAt;
  const active = s.tunnels.reduce((n, t) => n + t.activeConnections, 0);
  const tabs: { id: Tab; label: string }[] = [
    { id: 'tunnels', label: `Tunnels (${s.tunnels.length})` },
    { id: 'events', label: `Events (${s.events.length})` },
    { id: 'identity', label: 'Identity' },
    ...(update.gui ? [{ id: 'settings' as const, label: 'Settings' }] : []),
  ];
  const shown = tabs.some((t) => t.id === tab) ? tab : 'tunnels';
  return (
    <>
      <Header>
        {update.gui && (
          <div class="header-actions" inert={offline}>
            {s.tunnels.length > 0 && (
              <button
                type="button"
                class="btn btn-small"
                onClick={() => void api.setPaused(!s.paused).catch(() => {})}
              >
                {s.paused ? 'Resume all' : 'Pause all'}
              </button>
            )}
            <button type="button" class="btn btn-small" onClick={() => setQuitting(true)}>
              Quit mtt
            </button>
          </div>
        )}
      </Header>
      <main class={`page${offline ? ' is-offline' : ''}`} id="main">
        {offline && <OfflineBanner link={feed.link} lastUpdate={feed.receivedAt} />}
        <div class="live" inert={offline} aria-hidden={offline ? 'true' : undefined}>
          {!offline && <ConnectionBanner snapshot={s} clockSkew={clockSkew} />}
          {!offline && s.paused && <PausedBanner />}
          <Tabs tabs={tabs} selected={shown} onSelect={setTab} />
          <section class="tabpanel" role="tabpanel" id={`panel-${shown}`} aria-labelledby={`tab-${shown}`}>
            {shown === 'tunnels' && <TunnelsView update={update} clockSkew={clockSkew} />}
            {shown === 'events' && <EventsView snapshot={s} />}
            {shown === 'identity' && <IdentityView snapshot={s} />}
            {shown === 'settings' && update.gui && <SettingsView gui={update.gui} />}
          </section>
        </div>
        {quitting && <QuitDialog active={active} onClose={() => setQuitting(false)} />}
      </main>
    </>
  );
}

function Header({ children }: { children?: preact.ComponentChildren }) {
  return (
    <header class="topbar">
      <img src="/favicon.svg" alt="" width="28" height="28" />
      <h1>MiniTCPTunnel</h1>
      <span class="spacer" />
      {children}
    </header>
  );
}

/** The WAI-ARIA tab pattern: one tab stop, arrow keys (and Home/End) move between tabs. */
function Tabs(p: { tabs: { id: Tab; label: string }[]; selected: Tab; onSelect: (t: Tab) => void }) {
  const list = useRef<HTMLDivElement>(null);
  const move = (ev: KeyboardEvent) => {
    const i = p.tabs.findIndex((t) => t.id === p.selected);
    const last = p.tabs.length - 1;
    const next =
      ev.key === 'ArrowRight'
        ? i === last
          ? 0
          : i + 1
        : ev.key === 'ArrowLeft'
          ? i === 0
            ? last
            : i - 1
          : ev.key === 'Home'
            ? 0
            : ev.key === 'End'
              ? last
              : -1;
    if (next < 0) return;
    ev.preventDefault();
    p.onSelect(p.tabs[next]!.id);
    list.current?.querySelector<HTMLElement>(`#tab-${p.tabs[next]!.id}`)?.focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label="Views" ref={list} onKeyDown={move}>
      {p.tabs.map((t) => (
        <button
          key={t.id}
          type="button"
          role="tab"
          class="tab"
          id={`tab-${t.id}`}
          aria-selected={t.id === p.selected}
          aria-controls={`panel-${t.id}`}
          tabIndex={t.id === p.selected ? 0 : -1}
          onClick={() => p.onSelect(t.id)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

function TunnelsView({ update, clockSkew }: { update: DashboardUpdate; clockSkew: number }) {
  const tunnels = update.snapshot.tunnels;
  const allowed = update.snapshot.server.allowedPorts;
  const [form, setForm] = useState<{ editing: TunnelView | undefined } | undefined>();
  const names = tunnels.map((t) => t.name);
  const rates = (t: TunnelView): TunnelRates => update.rates[t.name] ?? { in: [], out: [] };
  return (
    <>
      <div class="toolbar">
        <h2 class="view-title">Tunnels</h2>
        {allowed && allowed.length > 0 && (
          <span class="muted small" data-allowed-ports>
            The server lets this client open ports {formatRanges(allowed)}.
          </span>
        )}
        <span class="spacer" />
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
            rates={rates(t)}
            sampleMs={update.sampleMs}
            clockSkew={clockSkew}
            onEdit={() => setForm({ editing: t })}
          />
        ))}
      </div>
      {form && (
        <TunnelForm
          editing={form.editing}
          takenNames={names.filter((n) => n !== form.editing?.name)}
          {...(allowed ? { allowedPorts: allowed } : {})}
          onSubmit={(input) =>
            form.editing ? api.updateTunnel(form.editing.name, input) : api.addTunnel(input)
          }
          onClose={() => setForm(undefined)}
        />
      )}
    </>
  );
}

/** Quit asks first when connections are open: quitting ends them. */
function QuitDialog({ active, onClose }: { active: number; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<string | undefined>();
  const open = (el: HTMLDialogElement | null) => {
    ref.current = el;
    if (el && !el.open) el.showModal();
  };
  const quit = () => {
    api.quit().then(onClose, (err: Error) => setError(err.message));
  };
  return (
    <dialog
      ref={open}
      class="dialog"
      aria-labelledby="quit-title"
      aria-describedby="quit-text"
      onClose={onClose}
    >
      <h2 id="quit-title">Quit mtt?</h2>
      <p id="quit-text">
        {active > 0
          ? `${active} connection${active > 1 ? 's are' : ' is'} open through the tunnels. Quitting ends ${active > 1 ? 'them' : 'it'} now, and the public ports close.`
          : 'The tunnels close and the public ports stop answering until mtt runs again.'}
      </p>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={() => ref.current?.close()}>
          Cancel
        </button>
        <button type="button" class="btn btn-danger" onClick={quit} data-quit>
          {active > 0 ? `End ${active} connection${active > 1 ? 's' : ''} and quit` : 'Quit'}
        </button>
      </div>
    </dialog>
  );
}
