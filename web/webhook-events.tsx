import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { webhookEvents, type Webhook } from './types.ts';

/** The events a webhook is sent, changed in place (PATCH /webhooks/{id}). */
export function WebhookEvents({ webhook, changed }: { webhook: Webhook; changed: () => void }) {
  const [error, setError] = useState<string>();
  const id = (event: string) => `${webhook.id}-${event}`;
  return (
    <details>
      <summary>
        Change events<span class="visually-hidden"> of {webhook.url}</span>
      </summary>
      <form
        onSubmit={async (e: Event) => {
          e.preventDefault();
          setError(undefined);
          const events = new FormData(e.target as HTMLFormElement).getAll('events');
          try {
            await api('PATCH', `/webhooks/${webhook.id}`, { events });
            changed();
          } catch (err) {
            setError(err instanceof ApiError ? err.message : String(err));
          }
        }}
      >
        <fieldset>
          <legend>Events sent to {webhook.url}</legend>
          {webhookEvents.map((event) => (
            <div class="choice">
              <input
                type="checkbox"
                name="events"
                id={id(event)}
                value={event}
                checked={webhook.events.includes(event)}
              />
              <label for={id(event)}>{event}</label>
            </div>
          ))}
        </fieldset>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" class="secondary">
          Save the events
        </button>
      </form>
    </details>
  );
}
