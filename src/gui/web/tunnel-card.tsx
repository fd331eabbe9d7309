/** One tunnel as a card: where it goes, whether it works, what flows through it, its recent visitors. */
import { useId, useState } from 'preact/hooks';
import type { RecentConnection, TunnelView } from '../../client/index.js';
import { formatHostPort, parseRate, rateProblem } from '../../config/index.js';
import type { TunnelRates } from '../dashboard-types.js';
import { ApiFailure, api } from './api.js';
import {
  formatBytes,
  formatDuration,
  formatLimitRate,
  formatMs,
  formatRate,
  formatTime,
  peer,
} from './format.js';
import { CopyButton, Sparkline, StatusPill, Switch, useNow } from './widgets.js';

interface Props {
  tunnel: TunnelView;
  rates: TunnelRates;
  sampleMs: number;
  /** The server's clock minus the page's, for countdowns. */
  clockSkew: number;
  onEdit: () => void;
}

/** The public address a person opens: the server's address for the port, IPv6 in brackets. */
function publicAddress(t: TunnelView): string {
  if (!t.publicAddress) return `:${t.remotePort}`;
  const colon = t.publicAddress.lastIndexOf(':');
  return formatHostPort(t.publicAddress.slice(0, colon), t.publicAddress.slice(colon + 1));
}

export function TunnelCard(p: Props) {
  const t = p.tunnel;
  const id = useId();
  const nameId = `${id}-name`;
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
  const retrying = t.status === 'error' && t.nextRetryAt !== undefined;
  useNow(retrying);
  const retryIn = retrying ? Math.max(0, Math.ceil((t.nextRetryAt! - (Date.now() + p.clockSkew)) / 1000)) : 0;
  const localDown = t.enabled && t.local?.state === 'failing';
  const address = publicAddress(t);
  const openable = t.publicAddress !== '' && t.status === 'active';
  const rateIn = p.rates.in.at(-1) ?? 0;
  const rateOut = p.rates.out.at(-1) ?? 0;
  const recent = t.recent ?? [];
  const limits = limitsOf(t);
  return (
    <article
      class={`card card-${t.status}${localDown ? ' card-local-down' : ''}`}
      data-tunnel={t.name}
      aria-labelledby={nameId}
    >
      <header class="card-head">
        <h3 id={nameId}>{t.name}</h3>
        <StatusPill status={t.status} {...(localDown ? { localDown } : {})} />
      </header>
      <dl class="route">
        <dt>Public</dt>
        <dd class="route-public">
          <code data-field="public">{address}</code>
          {t.publicAddress && (
            <span class="route-actions">
              <CopyButton text={address} label={`public address of ${t.name}`} />
              {openable && (
                <a
                  class="btn btn-small"
                  href={`http://${address}/`}
                  target="_blank"
                  rel="noopener noreferrer"
                  aria-label={`Open ${address} in the browser`}
                >
                  Open
                </a>
              )}
            </span>
          )}
        </dd>
        <dt>Local</dt>
        <dd>
          <code data-field="local">{formatHostPort(t.localHost, t.localPort)}</code>
        </dd>
        {limits && (
          <>
            <dt>Limits</dt>
            <dd class="route-limits" data-field="limits">
              {limits.text}
              {limits.note && <span class="muted"> ({limits.note})</span>}
            </dd>
          </>
        )}
      </dl>
      {t.status === 'error' && (
        <div class="card-error" data-field="error">
          <p>
            <strong>Refused by the server:</strong> {peer(t.error ?? 'no reason given')}
          </p>
          <p class="card-retry">
            <span data-field="retry">
              {retrying ? `Next try in ${formatDuration(retryIn)}.` : 'Not retrying by itself.'}
            </span>
            <button type="button" class="btn btn-small" onClick={() => run(() => api.retry(t.name))}>
              Retry now
            </button>
          </p>
        </div>
      )}
      {localDown && (
        <p class="card-warn" data-field="local-down">
          <strong>Local service down:</strong> {formatHostPort(t.localHost, t.localPort)} refused the last
          connection{t.local?.lastError ? ` (${peer(t.local.lastError)})` : ''}
          {t.local?.since ? ` since ${formatTime(t.local.since)}` : ''}. Visitors are cut off until it
          answers.
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
            {t.failedDials > 0 ? ` · ${t.failedDials} not answered` : ''}
          </span>
        </div>
        <ByteStat
          way="in"
          label="To service"
          title="Bytes the local service received from visitors"
          bytes={t.bytesIn}
          rate={rateIn}
        />
        <ByteStat
          way="out"
          label="To visitors"
          title="Bytes the visitors received from the local service"
          bytes={t.bytesOut}
          rate={rateOut}
        />
        <Sparkline rin={p.rates.in} rout={p.rates.out} name={t.name} sampleMs={p.sampleMs} />
      </div>
      {recent.length > 0 && <RecentList name={t.name} recent={recent} />}
      {error && (
        <p class="card-error" role="alert">
          {error}
        </p>
      )}
      <footer class="card-actions">
        <Switch
          checked={t.enabled}
          labelledBy={nameId}
          label="Enabled"
          onChange={(enabled) => void run(() => api.setEnabled(t.name, enabled))}
        />
        <span class="spacer" />
        {confirming ? (
          <>
            <span class="muted">Delete?</span>
            <button
              type="button"
              class="btn btn-danger btn-small"
              onClick={() => run(() => api.removeTunnel(t.name))}
            >
              Yes, delete {t.name}
            </button>
            <button type="button" class="btn btn-small" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <>
            <button type="button" class="btn btn-small" onClick={p.onEdit} aria-label={`Edit ${t.name}`}>
              Edit
            </button>
            <button
              type="button"
              class="btn btn-small"
              onClick={() => setConfirming(true)}
              aria-label={`Delete ${t.name}`}
            >
              Delete
            </button>
          </>
        )}
      </footer>
    </article>
  );
}

/** Bytes one way through the tunnel, with the current rate and the sparkline's colour swatch. */
function ByteStat(p: { way: 'in' | 'out'; label: string; title: string; bytes: number; rate: number }) {
  return (
    <div class="stat">
      <span class="stat-label" title={p.title}>
        <span class={`swatch swatch-${p.way}`} aria-hidden="true" /> {p.label}
      </span>
      <span class="stat-value" data-stat={`bytes-${p.way}`}>
        {formatBytes(p.bytes)}
      </span>
      <span class="stat-sub">{formatRate(p.rate)}</span>
    </div>
  );
}

/**
 * The card's limits line: what the server applies (TunnelStatus, the request under the key's
 * ceilings) while the tunnel is open, else what the tunnel asks for; undefined when neither has any.
 */
export function limitsOf(t: TunnelView): { text: string; note?: string } | undefined {
  const askedRate =
    t.rateLimit !== undefined && rateProblem(t.rateLimit) === undefined ? parseRate(t.rateLimit) : 0;
  const asked = { maxConnections: t.maxConnections ?? 0, rateLimit: askedRate };
  const describe = (l: { maxConnections: number; rateLimit: number }) =>
    [
      l.maxConnections > 0 ? `${l.maxConnections} connection${l.maxConnections === 1 ? '' : 's'}` : '',
      l.rateLimit > 0 ? `${formatLimitRate(l.rateLimit)} each way` : '',
    ]
      .filter((x) => x !== '')
      .join(', ');
  const eff = t.status === 'active' ? t.effective : undefined;
  if (!eff) {
    const text = describe(asked);
    return text === '' ? undefined : { text, note: 'asked for; the server applies them once open' };
  }
  const text = describe(eff);
  if (text === '') return undefined;
  const lowered =
    (eff.maxConnections > 0 && eff.maxConnections !== asked.maxConnections) ||
    (eff.rateLimit > 0 && eff.rateLimit !== asked.rateLimit);
  const askedText = describe(asked);
  return lowered
    ? { text, note: `the server's ceiling for this key; asked for ${askedText === '' ? 'none' : askedText}` }
    : { text };
}

function RecentList({ name, recent }: { name: string; recent: RecentConnection[] }) {
  const rows = [...recent].reverse();
  return (
    <details class="recent">
      <summary>Recent connections ({recent.length})</summary>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable table must be reachable by keyboard (WCAG 2.1.1) */}
      <section class="table-scroll" tabIndex={0} aria-label={`Recent connections of ${name}`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">From</th>
              <th scope="col">Lasted</th>
              <th scope="col">To service</th>
              <th scope="col">To visitor</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-recent={r.id}>
                <td>{formatTime(r.at)}</td>
                <td>
                  <code>{peer(r.peer)}</code>
                </td>
                <td>{r.open ? 'open' : r.durationMs !== undefined ? formatMs(r.durationMs) : ''}</td>
                <td>{formatBytes(r.bytesIn)}</td>
                <td>{formatBytes(r.bytesOut)}</td>
                <td>{r.error ? peer(r.error) : r.open ? '' : 'closed'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </details>
  );
}
