/**
 * First run: this client's key (made just now) to give to the server's admin, then the server's
 * address and, if the admin gave it, the server's key. Checked with the client's schema here and by
 * mtt, which writes the config file and starts the client.
 */
import { useRef, useState } from 'preact/hooks';
import { clientConfigSchema } from '../../config/index.js';
import type { SetupInfo } from '../setup.js';
import { ApiFailure } from './api.js';
import { CopyButton } from './widgets.js';

type Key = 'server' | 'serverKey';

function check(key: Key, text: string): string | undefined {
  const t = text.trim();
  if (key === 'serverKey' && t === '') return undefined;
  const r = clientConfigSchema.shape[key].safeParse(t === '' ? undefined : t);
  return r.success ? undefined : r.error.issues[0]?.message;
}

async function postSetup(body: { server: string; serverKey?: string }): Promise<void> {
  const res = await fetch('/api/setup', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.ok) return;
  const err = (await res.json().catch(() => ({ error: `${res.status}` }))) as {
    error: string;
    fields?: Record<string, string>;
  };
  throw new ApiFailure(res.status, err.error, undefined, err.fields as never);
}

export function SetupView({ setup }: { setup: SetupInfo }) {
  const [server, setServer] = useState('');
  const [serverKey, setServerKey] = useState('');
  const [errors, setErrors] = useState<Partial<Record<Key, string>>>({});
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const found: Partial<Record<Key, string>> = {};
    const es = check('server', server);
    const ek = check('serverKey', serverKey);
    if (es) found.server = es;
    if (ek) found.serverKey = ek;
    setErrors(found);
    if (es || ek) {
      setStatus(`${es && ek ? '2 fields need' : '1 field needs'} a fix.`);
      form.current?.querySelector<HTMLElement>(es ? '#setup-server' : '#setup-serverKey')?.focus();
      return;
    }
    setBusy(true);
    setStatus('Saving…');
    try {
      await postSetup({
        server: server.trim(),
        ...(serverKey.trim() ? { serverKey: serverKey.trim() } : {}),
      });
      setStatus('Saved. Connecting…');
    } catch (err) {
      if (err instanceof ApiFailure && err.fields && Object.keys(err.fields).length > 0) {
        setErrors(err.fields as Partial<Record<Key, string>>);
      }
      setStatus(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
      setBusy(false);
    }
  };

  const field = (
    key: Key,
    label: string,
    hint: string,
    value: string,
    set: (v: string) => void,
    multiline = false,
  ) => {
    const err = errors[key];
    const Input = multiline ? 'textarea' : 'input';
    return (
      <div class={`field${err ? ' has-error' : ''}`}>
        <label for={`setup-${key}`}>{label}</label>
        <Input
          id={`setup-${key}`}
          name={key}
          value={value}
          {...(multiline ? { rows: 3 } : {})}
          autoComplete="off"
          spellcheck={false}
          aria-invalid={err ? 'true' : 'false'}
          aria-describedby={`setup-${key}-hint setup-${key}-error`}
          onInput={(e: Event) => {
            const v = (e.currentTarget as HTMLInputElement).value;
            set(v);
            if (errors[key] !== undefined) setErrors({ ...errors, [key]: check(key, v) });
          }}
        />
        <p class="field-hint" id={`setup-${key}-hint`}>
          {hint}
        </p>
        <p
          class={err ? 'field-error' : 'field-error empty'}
          id={`setup-${key}-error`}
          data-field={err ? key : undefined}
          aria-live="polite"
        >
          {err ?? ''}
        </p>
      </div>
    );
  };

  return (
    <div class="setup" data-setup>
      <h2 class="view-title">Set up this client</h2>
      <section class="panel" aria-labelledby="setup-step1">
        <h3 id="setup-step1">1. Give this client's key to the server's admin</h3>
        <p>
          {setup.createdKey ? 'A new key was made for this client' : 'This client has a key'} in{' '}
          <code>{setup.identityPath}</code>. The server lets in only keys on its allow-list: send this line to
          its admin, who adds it with <code>mtt allow</code>. The private key never leaves this machine.
        </p>
        <div class="keyline">
          <code data-setup-key>{setup.publicKeyLine}</code>
          <CopyButton text={setup.publicKeyLine} label="public key line" />
        </div>
        <p class="muted small">
          Fingerprint <code>{setup.fingerprint}</code>
        </p>
      </section>
      <form class="panel" onSubmit={submit} noValidate ref={form} aria-labelledby="setup-step2">
        <h3 id="setup-step2">2. Tell mtt where the server is</h3>
        {field(
          'server',
          'Server address',
          'host:port, as the admin gave it, e.g. tunnel.example.net:7835',
          server,
          setServer,
        )}
        {field(
          'serverKey',
          'Server key (optional)',
          "The server's public key line or SHA256: fingerprint, if the admin gave it. Empty: mtt trusts the key it sees first and remembers it.",
          serverKey,
          setServerKey,
          true,
        )}
        <p class="form-status" role="status">
          {status}
        </p>
        <p class="muted small">
          This writes <code>{setup.configPath}</code>; add tunnels once connected.
        </p>
        <div class="dialog-actions">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            Save and connect
          </button>
        </div>
      </form>
    </div>
  );
}
