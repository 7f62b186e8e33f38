import { createRoute, z } from '@hono/zod-openapi';
import { defaultWebhookEvents, signatureToleranceSeconds, webhookEvents } from '../common/webhook-events.ts';
import type { Db } from '../db/database.ts';
import type { Webhook } from '../db/tables/webhook.table.ts';
import type { Vault } from '../db/vault.ts';
import {
  createWebhook,
  deleteWebhook,
  deliveriesPage,
  getWebhook,
  setWebhookEvents,
  webhooksPage,
} from '../db/webhooks.data.ts';
import {
  bodyErrors,
  errorResponses,
  holdsSecret,
  idParam,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import { outboundAllowed, outboundRefusedMessage } from '../common/outbound-guard.ts';

const webhookSchema = z
  .object({ id: z.string(), url: z.string(), events: z.array(z.enum(webhookEvents)), createdAt: z.string() })
  .openapi('Webhook');

const present = (w: Webhook): z.infer<typeof webhookSchema> => ({
  id: w.id,
  url: w.url,
  events: w.events,
  createdAt: w.created_at.toISOString(),
});

const urlSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password;
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL without user or password')
  .refine(outboundAllowed, outboundRefusedMessage);

const eventsSchema = z
  .array(z.enum(webhookEvents))
  .min(1)
  .openapi({
    description: 'The events this webhook is sent',
    example: ['backup.failed', 'backup.succeeded'],
  });

/** The team's webhooks: signed notifications of backups (failed, missed, and succeeded if asked) and restores. */
export function webhooksRoutes({ db, vault }: { db: Db; vault: Vault }) {
  return newRouter()
    .openapi(
      createRoute({
        method: 'post',
        path: '/',
        operationId: 'createWebhook',
        tags: ['Webhooks'],
        summary: 'Add a webhook; its signing secret is in this response only',
        description:
          `Each delivery is a JSON POST signed as Standard Webhooks (https://www.standardwebhooks.com): ` +
          `webhook-id (the delivery's id, the same on every retry), webhook-timestamp (unix seconds) and ` +
          `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">. Check it with a Standard ` +
          `Webhooks library, \`new Webhook(secret).verify(body, headers)\`, which also refuses a timestamp more ` +
          `than ${signatureToleranceSeconds} s from your clock. Deliveries are retried with backoff until a 2xx ` +
          `answer. Without \`events\`, every event but backup.succeeded.`,
        request: {
          body: jsonBody(
            z.strictObject({
              url: urlSchema,
              events: eventsSchema.default([...defaultWebhookEvents]),
            }),
          ),
        },
        responses: {
          201: locatedResponse(z.object({ webhook: webhookSchema, secret: z.string() }), 'Added'),
          ...errorResponses(...bodyErrors, 409),
        },
      }),
      async (c) => {
        const { webhook, secret } = await createWebhook(db, vault, c.get('teamId'), c.req.valid('json'));
        holdsSecret(c);
        c.header('location', `/webhooks/${webhook.id}`);
        return c.json({ webhook: present(webhook), secret }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        operationId: 'listWebhooks',
        tags: ['Webhooks'],
        summary: 'The team’s webhooks (never their secrets), newest first',
        request: { query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('webhooks', webhookSchema), 'Webhooks'),
          ...errorResponses(422),
        },
      }),
      async (c) => {
        const query = c.req.valid('query');
        const page = await webhooksPage(db, c.get('teamId'), pageRequest(query));
        return c.json(pageBody(c, 'webhooks', page, query.limit, present), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}/deliveries',
        operationId: 'listWebhookDeliveries',
        tags: ['Webhooks'],
        summary: 'The delivery log of a webhook, newest first',
        request: { params: idParam('whk_...'), query: pageQuery },
        responses: {
          200: jsonResponse(
            pageSchema(
              'deliveries',
              z.object({
                id: z.string(),
                event: z.enum(webhookEvents),
                status: z.enum(['pending', 'delivered', 'failed']),
                attempts: z.number(),
                lastStatusCode: z.number().nullable(),
                lastError: z.string().nullable(),
                payload: z.record(z.string(), z.unknown()),
                createdAt: z.string(),
                finishedAt: z.string().nullable(),
              }),
            ),
            'Deliveries',
          ),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const webhook = await getWebhook(db, c.get('teamId'), c.req.valid('param').id);
        const query = c.req.valid('query');
        const page = await deliveriesPage(db, webhook.id, pageRequest(query));
        return c.json(
          pageBody(c, 'deliveries', page, query.limit, (d) => ({
            id: d.id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            lastStatusCode: d.last_status_code,
            lastError: d.last_error,
            payload: d.payload,
            createdAt: d.created_at.toISOString(),
            finishedAt: d.finished_at?.toISOString() ?? null,
          })),
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'patch',
        path: '/{id}',
        operationId: 'updateWebhookEvents',
        tags: ['Webhooks'],
        summary: 'Change the events a webhook is sent',
        request: {
          params: idParam('whk_...'),
          body: jsonBody(z.strictObject({ events: eventsSchema })),
        },
        responses: { 200: jsonResponse(webhookSchema, 'Changed'), ...errorResponses(...bodyErrors, 404) },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const webhook = await setWebhookEvents(db, c.get('teamId'), id, c.req.valid('json').events);
        return c.json(present(webhook), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        operationId: 'deleteWebhook',
        tags: ['Webhooks'],
        summary: 'Remove a webhook and its secret',
        request: { params: idParam('whk_...') },
        responses: { 204: { description: 'Removed' }, ...errorResponses(404, 422) },
      }),
      async (c) => {
        await deleteWebhook(db, c.get('teamId'), c.req.valid('param').id);
        return c.body(null, 204);
      },
    );
}
