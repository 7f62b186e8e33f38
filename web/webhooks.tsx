import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { when } from './format.ts';
import { Link } from './router.tsx';
import { webhookEvents, type Page, type Webhook } from './types.ts';
import { FieldError, Pending, Title, useLoad } from './ui.tsx';
import { WebhookEvents } from './webhook-events.tsx';

/** Adds a webhook; its signing secret is in the answer only, shown here that once. */
function AddWebhook({ added }: { added: (secret: string) => void }) {
  const [error, setError] = useState<ApiError>();
  return (
    <form
      class="card"
      aria-labelledby="add-webhook"
      onSubmit={async (e: Event) => {
        e.preventDefault();
        const form = e.target as HTMLFormElement;
        const data = new FormData(form);
        setError(undefined);
        try {
          const { secret } = await api<{ secret: string }>('POST', '/webhooks', {
            url: (data.get('url') as string).trim(),
            events: data.getAll('events'),
          });
          form.reset();
          added(secret);
        } catch (err) {
          setError(err instanceof ApiError ? err : new ApiError(0, 'network', String(err)));
        }
      }}
    >
      <h2 id="add-webhook">Add a webhook</h2>
      <div class="field">
        <label for="webhook-url">URL</label>
        <input
          id="webhook-url"
          name="url"
          type="url"
          required
          placeholder="https://example.com/hooks/strackt"
          aria-invalid={error?.field === 'url' ? 'true' : undefined}
          aria-describedby={error?.field === 'url' ? 'webhook-url-error' : undefined}
        />
        <FieldError id="webhook-url-error" error={error?.field === 'url' ? error : undefined} />
      </div>
      <fieldset>
        <legend>Events</legend>
        {webhookEvents.map((event) => (
          <div class="choice">
            <input
              type="checkbox"
              name="events"
              id={`event-${event}`}
              value={event}
              checked={event !== 'backup.succeeded'}
            />
            <label for={`event-${event}`}>{event}</label>
          </div>
        ))}
      </fieldset>
      {error && error.field !== 'url' && (
        <p role="alert" class="error">
          {error.message}
        </p>
      )}
      <button type="submit">Add the webhook</button>
    </form>
  );
}

/** The team's webhooks: each with its delivery log; add one (its secret shown once) or remove one. */
export function WebhooksView() {
  const { data, error, reload } = useLoad(
    () => api<Page<'webhooks', Webhook>>('GET', '/webhooks?limit=200'),
    [],
  );
  const [secret, setSecret] = useState<string>();
  const [failure, setFailure] = useState<string>();
  return (
    <>
      <Title>Webhooks</Title>
      {secret && (
        <section class="card" aria-labelledby="webhook-secret" role="status">
          <h2 id="webhook-secret">Signing secret, shown this once</h2>
          <p class="secret">{secret}</p>
          <p class="muted">
            Check each delivery’s signature with it (Standard Webhooks:{' '}
            <code>new Webhook(secret).verify(body, headers)</code>
            ). strackt never shows it again.
          </p>
          <button type="button" class="secondary" onClick={() => setSecret(undefined)}>
            I have saved it
          </button>
        </section>
      )}
      {failure && (
        <p role="alert" class="error">
          {failure}
        </p>
      )}
      {!data ? (
        <Pending error={error} />
      ) : data.webhooks.length === 0 ? (
        <p>No webhooks: nobody is told when a backup fails.</p>
      ) : (
        <ul class="cards">
          {data.webhooks.map((w) => (
            <li class="card">
              <h2 class="url">{w.url}</h2>
              <p>Sent: {w.events.join(', ')}</p>
              <p class="muted">added {when(w.createdAt)}</p>
              <WebhookEvents webhook={w} changed={reload} />
              <div class="row-actions">
                <Link href={`/app/webhooks/${w.id}`}>
                  Delivery log<span class="visually-hidden"> of {w.url}</span>
                </Link>
                <button
                  type="button"
                  class="link danger"
                  onClick={async () => {
                    if (!confirm(`Remove the webhook ${w.url}? Its secret goes with it.`)) return;
                    await api('DELETE', `/webhooks/${w.id}`).then(reload, (err: Error) =>
                      setFailure(err.message),
                    );
                  }}
                >
                  Remove<span class="visually-hidden"> {w.url}</span>
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      <AddWebhook
        added={(s) => {
          setSecret(s);
          reload();
        }}
      />
    </>
  );
}
