import { api } from './api.ts';
import { when } from './format.ts';
import { Link } from './router.tsx';
import type { Page, Webhook, WebhookDelivery } from './types.ts';
import { Pending, Title, useLoad } from './ui.tsx';

async function loadDeliveries(id: string) {
  const [{ webhooks }, { deliveries }] = await Promise.all([
    api<Page<'webhooks', Webhook>>('GET', '/webhooks?limit=200'),
    api<Page<'deliveries', WebhookDelivery>>('GET', `/webhooks/${id}/deliveries?limit=100`),
  ]);
  return { webhook: webhooks.find((w) => w.id === id), deliveries };
}

/** One webhook's delivery log, newest first: what was sent, how often tried, and what answered. */
export function WebhookDeliveriesView({ id }: { id: string }) {
  const { data, error, reload } = useLoad(() => loadDeliveries(id), [id]);
  return (
    <>
      <Title>Delivery log</Title>
      <p>
        <Link href="/app/webhooks">Back to the webhooks</Link>
      </p>
      {!data ? (
        <Pending error={error} />
      ) : (
        <>
          <p>
            Deliveries to <strong class="url">{data.webhook?.url ?? id}</strong>, newest first. Each is
            retried with backoff until it is answered with a 2xx.
          </p>
          <button type="button" class="secondary" onClick={reload}>
            Refresh
          </button>
          {data.deliveries.length === 0 ? (
            <p>Nothing sent yet.</p>
          ) : (
            <div class="scroll" tabIndex={0} role="region" aria-labelledby="deliveries-caption">
              <table>
                <caption id="deliveries-caption" class="visually-hidden">
                  Deliveries
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Sent</th>
                    <th scope="col">Event</th>
                    <th scope="col">Status</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last answer</th>
                  </tr>
                </thead>
                <tbody>
                  {data.deliveries.map((d) => (
                    <tr>
                      <th scope="row">
                        <time dateTime={d.createdAt}>{when(d.createdAt)}</time>
                      </th>
                      <td>{d.event}</td>
                      <td data-status={d.status === 'delivered' ? 'succeeded' : d.status}>{d.status}</td>
                      <td>{d.attempts}</td>
                      <td>
                        {d.lastStatusCode !== null ? `HTTP ${d.lastStatusCode}` : ''}
                        {d.lastError ? ` ${d.lastError}` : ''}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </>
  );
}
