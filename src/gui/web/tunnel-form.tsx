/** The add/edit tunnel dialog: every field checked here first, then by the client's TunnelManager. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TunnelConfig, TunnelView } from '../../client/index.js';
import {
  draftOf,
  draftToInput,
  emptyDraft,
  type FieldErrors,
  formatRanges,
  type TunnelDraft,
  validateTunnelDraft,
} from '../tunnel-validation.js';
import { ApiFailure } from './api.js';

interface Props {
  /** The tunnel being edited, or undefined to add one. */
  editing: TunnelView | undefined;
  /** Names already in use (the edited one excluded). */
  takenNames: string[];
  /** The public ports the server lets this client open, when it said. */
  allowedPorts?: { low: number; high: number }[];
  onSubmit: (input: TunnelConfig) => Promise<void>;
  onClose: () => void;
}

type TextField = 'name' | 'remotePort' | 'localHost' | 'localPort' | 'maxConnections' | 'rateLimit';

interface FieldSpec {
  key: TextField;
  label: string;
  placeholder: string;
  numeric: boolean;
  hint?: string;
}

const FIELDS: FieldSpec[] = [
  { key: 'name', label: 'Name', placeholder: 'web', numeric: false },
  { key: 'remotePort', label: 'Public port (on the server)', placeholder: '8080', numeric: true },
  { key: 'localHost', label: 'Local host', placeholder: '127.0.0.1', numeric: false },
  { key: 'localPort', label: 'Local port', placeholder: '3000', numeric: true },
];

const LIMIT_FIELDS: FieldSpec[] = [
  {
    key: 'maxConnections',
    label: 'Connection limit',
    placeholder: 'no limit',
    numeric: true,
    hint: 'Most connections open at once.',
  },
  {
    key: 'rateLimit',
    label: 'Rate limit',
    placeholder: 'no limit',
    numeric: false,
    hint: 'Each way, e.g. 10MB/s, 512KiB/s or 100Mbit/s.',
  },
];

export function TunnelForm({ editing, takenNames, allowedPorts, onSubmit, onClose }: Props) {
  const [draft, setDraft] = useState<TunnelDraft>(() => (editing ? draftOf(editing) : emptyDraft()));
  const check = (d: TunnelDraft) =>
    validateTunnelDraft(d, { takenNames, ...(allowedPorts ? { allowedPorts } : {}) });
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const dialog = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
  }, []);

  const set = (key: keyof TunnelDraft, value: string | boolean) => {
    const next = { ...draft, [key]: value };
    setDraft(next);
    // Once a field shows an error, re-check it as the user types so the message clears promptly.
    if (errors[key as keyof FieldErrors] !== undefined) {
      const fresh = check(next);
      setErrors({ ...errors, [key]: fresh[key as keyof FieldErrors] });
    }
  };

  const blur = (key: TextField | 'permitFrom') => {
    if (draft[key] === '') return;
    const fresh = check(draft);
    setErrors({ ...errors, [key]: fresh[key] });
  };

  const [summary, setSummary] = useState('');
  const formRef = useRef<HTMLFormElement>(null);
  /** Says how many fields need a fix (a live region) and puts the focus on the first of them. */
  const flag = (found: FieldErrors) => {
    const wrong = Object.keys(found).filter((k) => found[k as keyof FieldErrors] !== undefined);
    setSummary(
      wrong.length === 0 ? '' : `${wrong.length} field${wrong.length > 1 ? 's need' : ' needs'} a fix.`,
    );
    const first = [...FIELDS, ...LIMIT_FIELDS].find((f) => wrong.includes(f.key))?.key ?? wrong[0];
    if (first) {
      const more = formRef.current?.querySelector('details');
      if (more && ['compress', 'proxyProtocol', 'permitFrom', 'maxConnections', 'rateLimit'].includes(first))
        more.open = true;
      formRef.current?.querySelector<HTMLElement>(`#f-${first}`)?.focus();
    }
  };

  const submit = async (ev: Event) => {
    ev.preventDefault();
    setFormError(undefined);
    const found = check(draft);
    setErrors(found);
    if (Object.values(found).some((e) => e !== undefined)) {
      flag(found);
      return;
    }
    setSummary('');
    setBusy(true);
    try {
      await onSubmit(draftToInput(draft));
      onClose();
    } catch (err) {
      if (err instanceof ApiFailure && err.field !== undefined && err.field !== 'enabled') {
        const found = (err.fields ?? { [err.field]: err.message }) as FieldErrors;
        setErrors(found);
        flag(found);
      } else {
        setFormError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="tunnel-form-title" onClose={onClose}>
      <form onSubmit={submit} noValidate ref={formRef}>
        <h2 id="tunnel-form-title">{editing ? `Edit ${editing.name}` : 'Add a tunnel'}</h2>
        <p class="muted">
          Connections to the public port on the server are forwarded to the local host and port.
          {allowedPorts && allowedPorts.length > 0
            ? ` The server allows ports ${formatRanges(allowedPorts)}.`
            : ''}
        </p>
        {FIELDS.map((f) => (
          <TextInput key={f.key} spec={f} draft={draft} errors={errors} set={set} blur={blur} />
        ))}
        <label class="check">
          <input
            type="checkbox"
            name="enabled"
            checked={draft.enabled}
            onChange={(e) => set('enabled', (e.currentTarget as HTMLInputElement).checked)}
          />
          Enabled
        </label>
        <details class="more" open={hasAdvanced(editing)}>
          <summary>More options</summary>
          <div class="field">
            <label for="f-compress">Compression</label>
            <select
              id="f-compress"
              name="compress"
              value={compressValue(draft.compress)}
              aria-describedby="f-compress-hint"
              onChange={(e) => set('compress', compressOf((e.currentTarget as HTMLSelectElement).value))}
            >
              <option value="lz4">LZ4 (default)</option>
              <option value="zstd">zstd (stronger, for slow links)</option>
              <option value="off">Off</option>
            </select>
            <p class="field-hint" id="f-compress-hint">
              Turn it off when secrets and visitor-chosen bytes share a connection.
            </p>
          </div>
          <div class={`field${errors.proxyProtocol ? ' has-error' : ''}`}>
            <label for="f-proxyProtocol">PROXY protocol header</label>
            <select
              id="f-proxyProtocol"
              name="proxyProtocol"
              value={draft.proxyProtocol}
              onChange={(e) =>
                set(
                  'proxyProtocol',
                  (e.currentTarget as HTMLSelectElement).value as TunnelDraft['proxyProtocol'],
                )
              }
            >
              <option value="">None</option>
              <option value="v1">v1 (text)</option>
              <option value="v2">v2 (binary)</option>
            </select>
          </div>
          <div class={`field${errors.permitFrom ? ' has-error' : ''}`}>
            <label for="f-permitFrom">Allowed visitors</label>
            <textarea
              id="f-permitFrom"
              name="permitFrom"
              rows={2}
              value={draft.permitFrom}
              placeholder="anyone the server allows"
              spellcheck={false}
              aria-invalid={errors.permitFrom ? 'true' : 'false'}
              aria-describedby="f-permitFrom-hint f-permitFrom-error"
              onInput={(e) => set('permitFrom', (e.currentTarget as HTMLTextAreaElement).value)}
              onBlur={() => blur('permitFrom')}
            />
            <p class="field-hint" id="f-permitFrom-hint">
              Addresses or CIDR blocks, e.g. 203.0.113.0/24, 2001:db8::/32.
            </p>
            <p
              class={errors.permitFrom ? 'field-error' : 'field-error empty'}
              id="f-permitFrom-error"
              data-field={errors.permitFrom ? 'permitFrom' : undefined}
              aria-live="polite"
            >
              {errors.permitFrom ?? ''}
            </p>
          </div>
          {LIMIT_FIELDS.map((f) => (
            <TextInput key={f.key} spec={f} draft={draft} errors={errors} set={set} blur={blur} />
          ))}
        </details>
        <p class="form-status" role="status" data-summary>
          {summary}
        </p>
        {formError && (
          <p class="form-error" role="alert">
            {formError}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {editing ? 'Save' : 'Add tunnel'}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** The select's value for a tunnel's `compress`. */
function compressValue(c: TunnelDraft['compress']): string {
  return c === 'zstd' ? 'zstd' : c ? 'lz4' : 'off';
}

/** The tunnel's `compress` for the select's value. */
function compressOf(value: string): TunnelDraft['compress'] {
  return value === 'zstd' ? 'zstd' : value !== 'off';
}

/** Open the extra options when the tunnel already uses one. */
function hasAdvanced(t: TunnelView | undefined): boolean {
  return (
    t !== undefined &&
    (t.compress !== true ||
      t.proxyProtocol !== undefined ||
      t.permitFrom !== undefined ||
      t.maxConnections !== undefined ||
      t.rateLimit !== undefined)
  );
}

function TextInput(p: {
  spec: FieldSpec;
  draft: TunnelDraft;
  errors: FieldErrors;
  set: (key: keyof TunnelDraft, value: string) => void;
  blur: (key: TextField) => void;
}) {
  const f = p.spec;
  const err = p.errors[f.key];
  const describedBy = [f.hint ? `f-${f.key}-hint` : '', `f-${f.key}-error`].filter((x) => x).join(' ');
  return (
    <div class={`field${err ? ' has-error' : ''}`}>
      <label for={`f-${f.key}`}>{f.label}</label>
      <input
        id={`f-${f.key}`}
        name={f.key}
        value={p.draft[f.key]}
        placeholder={f.placeholder}
        inputMode={f.numeric ? 'numeric' : 'text'}
        autoComplete="off"
        spellcheck={false}
        aria-invalid={err ? 'true' : 'false'}
        aria-describedby={describedBy}
        onInput={(e) => p.set(f.key, (e.currentTarget as HTMLInputElement).value)}
        onBlur={() => p.blur(f.key)}
      />
      {f.hint && (
        <p class="field-hint" id={`f-${f.key}-hint`}>
          {f.hint}
        </p>
      )}
      <p
        class={err ? 'field-error' : 'field-error empty'}
        id={`f-${f.key}-error`}
        data-field={err ? f.key : undefined}
        aria-live="polite"
      >
        {err ?? ''}
      </p>
    </div>
  );
}
