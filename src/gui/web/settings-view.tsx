/**
 * Settings: the client's server address and key, heartbeat and reconnect timing (checked here with
 * the client's own schema, then by the client, applied live and saved to the config file), the
 * GUI's switches, where the files are, and an export of the config.
 */
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { clientConfigSchema, FIELD_LABELS } from '../../config/index.js';
import type { GuiSettings, GuiState } from '../dashboard-types.js';
import { ApiFailure, api } from './api.js';
import { Switch } from './widgets.js';

type Key = keyof GuiSettings;
type Draft = Record<Key, string>;

const FIELDS: { key: Key; label: string; hint: string; numeric: boolean; multiline?: boolean }[] = [
  {
    key: 'server',
    label: 'Server address',
    hint: 'host:port of the server, e.g. vps.example.com:7835',
    numeric: false,
  },
  {
    key: 'serverKey',
    label: 'Server key',
    hint: "The server's public key line or SHA256: fingerprint. Empty: trust the first key seen.",
    numeric: false,
    multiline: true,
  },
  {
    key: 'heartbeatSeconds',
    label: 'Heartbeat interval (seconds)',
    hint: 'How often the client checks the link.',
    numeric: true,
  },
  {
    key: 'heartbeatTimeoutSeconds',
    label: 'Heartbeat timeout (seconds)',
    hint: 'No answer for this long means the server is gone: reconnect.',
    numeric: true,
  },
  {
    key: 'reconnectMaxSeconds',
    label: 'Longest reconnect wait (seconds)',
    hint: 'Retries back off up to this.',
    numeric: true,
  },
];

const draftOf = (s: GuiSettings): Draft => ({
  server: s.server,
  serverKey: s.serverKey ?? '',
  heartbeatSeconds: String(s.heartbeatSeconds),
  heartbeatTimeoutSeconds: String(s.heartbeatTimeoutSeconds),
  reconnectMaxSeconds: String(s.reconnectMaxSeconds),
});

/** One field checked with the client's schema; the message uses the words the form shows. */
function check(key: Key, text: string): string | undefined {
  const t = text.trim();
  if (key === 'serverKey' && t === '') return undefined;
  const value = FIELDS.find((f) => f.key === key)!.numeric
    ? t === '' || Number.isNaN(Number(t))
      ? t
      : Number(t)
    : t;
  const r = clientConfigSchema.shape[key].safeParse(value);
  return r.success ? undefined : (r.error.issues[0]?.message ?? `${FIELD_LABELS[key]} is not valid`);
}

export function SettingsView({ gui }: { gui: GuiState }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(gui.settings));
  const [errors, setErrors] = useState<Partial<Record<Key, string>>>({});
  const [status, setStatus] = useState<string>('');
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const dirty = JSON.stringify(draft) !== JSON.stringify(draftOf(gui.settings));
  // Follow outside changes (the file edited) while the user has not started editing. The draft is
  // compared with the settings it was made from, when the change arrives: an effect runs after the
  // first paint, and what was typed before it must not be reset.
  const shown = useRef(gui.settings);
  useEffect(() => {
    const before = shown.current;
    shown.current = gui.settings;
    if (JSON.stringify(before) === JSON.stringify(gui.settings)) return;
    setDraft((d) => (JSON.stringify(d) === JSON.stringify(draftOf(before)) ? draftOf(gui.settings) : d));
  }, [JSON.stringify(gui.settings)]);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const found: Partial<Record<Key, string>> = {};
    for (const f of FIELDS) {
      const e = check(f.key, draft[f.key]);
      if (e) found[f.key] = e;
    }
    setErrors(found);
    if (Object.keys(found).length > 0) {
      setStatus(
        `${Object.keys(found).length} field${Object.keys(found).length > 1 ? 's need' : ' needs'} a fix.`,
      );
      const first = FIELDS.find((f) => found[f.key]);
      formRef.current?.querySelector<HTMLElement>(`#s-${first?.key}`)?.focus();
      return;
    }
    const patch: Partial<GuiSettings> = {};
    for (const f of FIELDS) {
      const t = draft[f.key].trim();
      (patch as Record<string, unknown>)[f.key] = f.numeric ? Number(t) : t;
    }
    setBusy(true);
    setStatus('');
    try {
      await api.updateSettings(patch);
      setStatus('Saved. The client uses the new settings now.');
    } catch (err) {
      if (err instanceof ApiFailure && err.fields && Object.keys(err.fields).length > 0) {
        setErrors(err.fields as Partial<Record<Key, string>>);
        setStatus('The client refused a value; see the marked field.');
      } else {
        setStatus(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="settings">
      <form class="panel" onSubmit={submit} noValidate ref={formRef} aria-labelledby="settings-server">
        <h2 id="settings-server">Server</h2>
        {FIELDS.map((f) => {
          const err = errors[f.key];
          const Input = f.multiline ? 'textarea' : 'input';
          return (
            <div class={`field${err ? ' has-error' : ''}`} key={f.key}>
              <label for={`s-${f.key}`}>{f.label}</label>
              <Input
                id={`s-${f.key}`}
                name={f.key}
                value={draft[f.key]}
                {...(f.multiline ? { rows: 3 } : { inputMode: f.numeric ? 'decimal' : 'text' })}
                autoComplete="off"
                spellcheck={false}
                aria-invalid={err ? 'true' : 'false'}
                aria-describedby={`s-${f.key}-hint s-${f.key}-error`}
                onInput={(e: Event) => {
                  const value = (e.currentTarget as HTMLInputElement).value;
                  setDraft({ ...draft, [f.key]: value });
                  if (errors[f.key] !== undefined) setErrors({ ...errors, [f.key]: check(f.key, value) });
                }}
                onBlur={() => setErrors({ ...errors, [f.key]: check(f.key, draft[f.key]) })}
              />
              <p class="field-hint" id={`s-${f.key}-hint`}>
                {f.hint}
              </p>
              <p class="field-error" id={`s-${f.key}-error`} data-field={f.key} aria-live="polite">
                {err ?? ''}
              </p>
            </div>
          );
        })}
        <p class="form-status" role="status">
          {status}
        </p>
        <div class="dialog-actions">
          <button
            type="button"
            class="btn"
            disabled={!dirty || busy}
            onClick={() => setDraft(draftOf(gui.settings))}
          >
            Undo changes
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy}>
            Save settings
          </button>
        </div>
      </form>
      <Preferences gui={gui} />
      <div class="panel">
        <h2>Files</h2>
        <div class="kv">
          <span class="k">Config file</span>
          <code data-path="config">{gui.configPath}</code>
          <span class="k">Identity key</span>
          <code data-path="identity">{gui.identityPath}</code>
          <span class="k">Known servers</span>
          <code data-path="known-servers">{gui.knownServersPath}</code>
        </div>
        <p>
          <a class="btn" href="/api/config" download>
            Export the config file
          </a>
        </p>
      </div>
    </div>
  );
}

function Preferences({ gui }: { gui: GuiState }) {
  const [error, setError] = useState<string | undefined>();
  const id = useId();
  const set = (patch: Parameters<typeof api.setPreferences>[0]) => {
    setError(undefined);
    api.setPreferences(patch).catch((err: Error) => setError(err.message));
  };
  const rows: { key: keyof GuiState['preferences']; label: string; hint: string }[] = [
    {
      key: 'notifications',
      label: 'Desktop notifications',
      hint: 'When the connection is lost or refused, a tunnel is refused, or a local service stops answering.',
    },
    {
      key: 'startAtLogin',
      label: 'Start at login',
      hint: 'Runs mtt gui with this config file when you log in.',
    },
    { key: 'launcher', label: 'In the applications menu', hint: 'A MiniTCPTunnel launcher with its icon.' },
  ];
  return (
    <div class="panel">
      <h2>This desktop</h2>
      <ul class="prefs">
        {rows.map((r) => (
          <li key={r.key}>
            <span id={`${id}-${r.key}`} class="pref-label">
              {r.label}
            </span>
            <Switch
              checked={gui.preferences[r.key]}
              labelledBy={`${id}-${r.key}`}
              label={gui.preferences[r.key] ? 'On' : 'Off'}
              onChange={(on) => set({ [r.key]: on })}
            />
            <span class="field-hint">{r.hint}</span>
          </li>
        ))}
      </ul>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
