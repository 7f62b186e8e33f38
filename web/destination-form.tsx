import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { verdicts, type Verdict, type Verdicts } from './destination-check.ts';
import type { CreatedDestination } from './types.ts';

const labels: Record<string, string> = {
  name: 'Name',
  endpoint: 'Endpoint',
  region: 'Region',
  bucket: 'Bucket',
  prefix: 'Prefix',
  accessKeyId: 'Access key id',
  secretAccessKey: 'Secret access key',
  url: 'Receiver URL',
  fingerprint: 'Certificate fingerprint',
  enrolmentCode: 'Enrolment code',
};

function Field({
  name,
  verdict,
  help,
  ...input
}: {
  name: string;
  verdict: Verdict;
  help?: string;
  type?: string;
  required?: boolean;
  value?: string;
  placeholder?: string;
}) {
  const described = [verdict && `${name}-check`, help && `${name}-help`].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={`dst-${name}`}>{labels[name]}</label>
      <input
        id={`dst-${name}`}
        name={name}
        autocomplete="off"
        spellcheck={false}
        aria-invalid={verdict && !verdict.ok ? 'true' : undefined}
        aria-describedby={described || undefined}
        {...input}
      />
      {help && (
        <p id={`${name}-help`} class="muted field-error">
          {help}
        </p>
      )}
      {verdict && (
        <p id={`${name}-check`} class={verdict.ok ? 'good field-error' : 'error field-error'}>
          {verdict.ok ? `✓ ${verdict.message}` : `✗ ${verdict.message}`}
        </p>
      )}
    </div>
  );
}

/** The body the API takes from the form: empty optional fields are left out. */
function bodyOf(kind: 's3' | 'receiver', form: FormData): Record<string, unknown> {
  const text = (name: string) => ((form.get(name) as string | null) ?? '').trim();
  if (kind === 'receiver')
    return {
      kind,
      name: text('name'),
      url: text('url'),
      fingerprint: text('fingerprint'),
      enrolmentCode: text('enrolmentCode'),
    };
  return {
    kind,
    name: text('name'),
    ...(text('endpoint') && { endpoint: text('endpoint') }),
    region: text('region') || 'us-east-1',
    bucket: text('bucket'),
    prefix: text('prefix'),
    pathStyle: form.get('pathStyle') === 'on',
    accessKeyId: text('accessKeyId'),
    secretAccessKey: form.get('secretAccessKey') as string,
  };
}

/**
 * Adds a bucket or a receiver. The API checks it before saving (a probe object written, read back and
 * deleted; a receiver enrolled first), and its answer is shown at the fields it concerns.
 */
export function DestinationForm({ onCreated }: { onCreated: (created: CreatedDestination) => void }) {
  const [kind, setKind] = useState<'s3' | 'receiver'>('s3');
  const [checked, setChecked] = useState<Verdicts>({});
  const [summary, setSummary] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="card"
      aria-labelledby="add-destination"
      onSubmit={async (e: Event) => {
        e.preventDefault();
        setBusy(true);
        setSummary('Checking: writing, reading back and deleting a probe object…');
        setChecked({});
        try {
          const form = e.target as HTMLFormElement;
          const created = await api<CreatedDestination>(
            'POST',
            '/destinations',
            bodyOf(kind, new FormData(form)),
          );
          // Saved: the form is emptied (the secret with it), and what the check proved is said once.
          form.reset();
          setChecked({});
          setSummary(
            kind === 's3'
              ? `Added ${created.destination.name}: the endpoint answered, the credentials were accepted, and a probe object was written, read back and deleted under the prefix.`
              : `Added ${created.destination.name}: the receiver showed the pinned certificate, took its enrolment code, and stored, returned and deleted a probe object.`,
          );
          setBusy(false);
          onCreated(created);
        } catch (err) {
          const error = err instanceof ApiError ? err : new ApiError(0, 'network', String(err));
          setChecked(verdicts(kind, error));
          setSummary(`Not saved: ${error.message}`);
          setBusy(false);
        }
      }}
    >
      <h2 id="add-destination">Add a destination</h2>
      <fieldset>
        <legend>Kind</legend>
        <div class="choice">
          <input
            type="radio"
            name="kind"
            id="kind-s3"
            checked={kind === 's3'}
            onChange={() => (setKind('s3'), setChecked({}))}
          />
          <label for="kind-s3">A bucket (S3 or compatible)</label>
          <input
            type="radio"
            name="kind"
            id="kind-receiver"
            checked={kind === 'receiver'}
            onChange={() => (setKind('receiver'), setChecked({}))}
          />
          <label for="kind-receiver">A receiver you run</label>
        </div>
      </fieldset>
      <Field name="name" required help="Lowercase letters, digits and hyphens." verdict={checked.name} />
      {kind === 's3' ? (
        <>
          <Field
            name="endpoint"
            type="url"
            placeholder="https://s3.example.com"
            help="Leave empty for AWS S3 itself."
            verdict={checked.endpoint}
          />
          <Field name="region" value="us-east-1" verdict={checked.region} />
          <Field name="bucket" required verdict={checked.bucket} />
          <Field
            name="prefix"
            help="Optional: a folder in the bucket for strackt’s objects."
            verdict={checked.prefix}
          />
          <div class="choice">
            <input type="checkbox" id="dst-pathStyle" name="pathStyle" checked />
            <label for="dst-pathStyle">Path-style addressing (most S3-compatible stores)</label>
          </div>
          <Field name="accessKeyId" required verdict={checked.accessKeyId} />
          <Field name="secretAccessKey" type="password" required verdict={checked.secretAccessKey} />
        </>
      ) : (
        <>
          <Field
            name="url"
            type="url"
            required
            placeholder="https://backup.example.com:8443"
            verdict={checked.url}
          />
          <Field
            name="fingerprint"
            required
            placeholder="AB:CD:…"
            help="As the receiver printed it at its first start."
            verdict={checked.fingerprint}
          />
          <Field name="enrolmentCode" type="password" required verdict={checked.enrolmentCode} />
        </>
      )}
      <p
        class={summary?.startsWith('Not') ? 'error' : summary?.startsWith('Added') ? 'good' : 'muted'}
        role="status"
      >
        {summary}
      </p>
      <button type="submit" disabled={busy}>
        Check and add
      </button>
    </form>
  );
}
