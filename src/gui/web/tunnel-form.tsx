/** The add/edit tunnel dialog: every field checked here first, then by the client's TunnelManager. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TunnelView } from '../../client/api.js';
import {
  draftToInput,
  type FieldErrors,
  type TunnelDraft,
  type TunnelInput,
  validateTunnelDraft,
} from '../tunnel-validation.js';
import { ApiFailure } from './api.js';

interface Props {
  /** The tunnel being edited, or undefined to add one. */
  editing: TunnelView | undefined;
  /** Names already in use (the edited one excluded). */
  takenNames: string[];
  onSubmit: (input: TunnelInput) => Promise<void>;
  onClose: () => void;
}

const FIELDS: {
  key: Exclude<keyof TunnelDraft, 'enabled'>;
  label: string;
  placeholder: string;
  numeric: boolean;
}[] = [
  { key: 'name', label: 'Name', placeholder: 'web', numeric: false },
  { key: 'remotePort', label: 'Public port (on the server)', placeholder: '8080', numeric: true },
  { key: 'localHost', label: 'Local host', placeholder: '127.0.0.1', numeric: false },
  { key: 'localPort', label: 'Local port', placeholder: '3000', numeric: true },
];

function draftOf(t: TunnelView | undefined): TunnelDraft {
  if (!t) return { name: '', remotePort: '', localHost: '127.0.0.1', localPort: '', enabled: true };
  return {
    name: t.name,
    remotePort: String(t.remotePort),
    localHost: t.localHost,
    localPort: String(t.localPort),
    enabled: t.enabled,
  };
}

export function TunnelForm({ editing, takenNames, onSubmit, onClose }: Props) {
  const [draft, setDraft] = useState<TunnelDraft>(() => draftOf(editing));
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
    if (errors[key] !== undefined) {
      const fresh = validateTunnelDraft(next, takenNames);
      setErrors({ ...errors, [key]: fresh[key] });
    }
  };

  const blur = (key: keyof TunnelDraft) => {
    if ((draft[key] as string) === '') return;
    const fresh = validateTunnelDraft(draft, takenNames);
    setErrors({ ...errors, [key]: fresh[key] });
  };

  const submit = async (ev: Event) => {
    ev.preventDefault();
    setFormError(undefined);
    const found = validateTunnelDraft(draft, takenNames);
    setErrors(found);
    if (Object.values(found).some((e) => e !== undefined)) return;
    setBusy(true);
    try {
      await onSubmit(draftToInput(draft));
      onClose();
    } catch (err) {
      if (err instanceof ApiFailure && err.field !== undefined && err.field !== 'enabled') {
        setErrors({ [err.field]: err.message });
      } else {
        setFormError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="tunnel-form-title" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <h2 id="tunnel-form-title">{editing ? `Edit ${editing.name}` : 'Add a tunnel'}</h2>
        <p class="muted">
          Connections to the public port on the server are forwarded to the local host and port.
        </p>
        {FIELDS.map((f) => {
          const err = errors[f.key];
          return (
            <div class={`field${err ? ' has-error' : ''}`} key={f.key}>
              <label for={`f-${f.key}`}>{f.label}</label>
              <input
                id={`f-${f.key}`}
                name={f.key}
                value={draft[f.key]}
                placeholder={f.placeholder}
                inputMode={f.numeric ? 'numeric' : 'text'}
                autoComplete="off"
                spellcheck={false}
                aria-invalid={err ? 'true' : 'false'}
                aria-describedby={err ? `f-${f.key}-error` : undefined}
                onInput={(e) => set(f.key, (e.currentTarget as HTMLInputElement).value)}
                onBlur={() => blur(f.key)}
              />
              {err && (
                <p class="field-error" id={`f-${f.key}-error`} data-field={f.key}>
                  {err}
                </p>
              )}
            </div>
          );
        })}
        <label class="check">
          <input
            type="checkbox"
            name="enabled"
            checked={draft.enabled}
            onChange={(e) => set('enabled', (e.currentTarget as HTMLInputElement).checked)}
          />
          Enabled
        </label>
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
