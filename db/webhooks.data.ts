import { randomBytes } from 'node:crypto';
import { DomainError, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { normalizeEvents, webhookSecret, type WebhookEvent } from '../common/webhook-events.ts';
import type { Db } from './database.ts';
import { jsonb } from './jsonb.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import type { Webhook, WebhookDelivery } from './tables/webhook.table.ts';
import type { Vault } from './vault.ts';

/** The vault kind of a webhook's signing key. */
export const webhookSecretKind = 'webhook-secret';

/** Each event is sent to every webhook of the team: a bound on them bounds the work one event makes. */
export const maxWebhooksPerTeam = 20;

/**
 * Creates a webhook with a fresh signing key (32 random bytes), kept in the vault; it is returned this
 * once, as a Standard Webhooks secret (`whsec_<base64>`). The vault holds the HMAC key bytes: those of
 * webhooks made before were the UTF-8 of the secret string they were shown, and sign the same way.
 */
export async function createWebhook(
  db: Db,
  vault: Vault,
  teamId: string,
  input: { url: string; events: WebhookEvent[] },
): Promise<{ webhook: Webhook; secret: string }> {
  const key = randomBytes(32);
  const secret = webhookSecret(key);
  const webhook = await db.transaction().execute(async (trx) => {
    // The team's row locked: two adds at once cannot both pass the count.
    await trx.selectFrom('teams').select('id').where('id', '=', teamId).forUpdate().execute();
    const { n } = await trx
      .selectFrom('webhooks')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('team_id', '=', teamId)
      .executeTakeFirstOrThrow();
    if (Number(n) >= maxWebhooksPerTeam)
      throw new DomainError(
        'conflict',
        'webhook_limit',
        `a team has at most ${maxWebhooksPerTeam} webhooks: remove one first (DELETE /webhooks/{id})`,
      );
    const secretId = await vault
      .put(trx, { teamId, kind: webhookSecretKind, secret: key })
      .finally(() => key.fill(0));
    return trx
      .insertInto('webhooks')
      .values({
        id: newId('whk'),
        team_id: teamId,
        url: input.url,
        events: jsonb(normalizeEvents(input.events)),
        secret_id: secretId,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  return { webhook, secret };
}

/** Changes the events a webhook is sent; deliveries already queued go on. */
export async function setWebhookEvents(
  db: Db,
  teamId: string,
  id: string,
  events: WebhookEvent[],
): Promise<Webhook> {
  const webhook = await db
    .updateTable('webhooks')
    .set({ events: jsonb(normalizeEvents(events)) })
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!webhook) throw notFound('webhook', id);
  return webhook;
}

export function listWebhooks(db: Db, teamId: string): Promise<Webhook[]> {
  return db.selectFrom('webhooks').selectAll().where('team_id', '=', teamId).orderBy('created_at').execute();
}

export function webhooksPage(db: Db, teamId: string, page: PageRequest): Promise<Page<Webhook>> {
  return keysetPage(
    db.selectFrom('webhooks').selectAll().where('team_id', '=', teamId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

export async function getWebhook(db: Db, teamId: string, id: string): Promise<Webhook> {
  const webhook = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!webhook) throw notFound('webhook', id);
  return webhook;
}

export async function deleteWebhook(db: Db, teamId: string, id: string): Promise<void> {
  const webhook = await getWebhook(db, teamId, id);
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('webhooks').where('id', '=', id).execute();
    await trx.deleteFrom('vault_secrets').where('id', '=', webhook.secret_id).execute();
  });
}

/**
 * A delivery for every webhook of the team that listens to the event; none twice for the same event
 * and subject (a retried activity, a recorded end recorded again). Answers the new deliveries' ids.
 */
export async function enqueueDeliveries(
  db: Db,
  teamId: string,
  event: WebhookEvent,
  subject: string,
  payload: Record<string, unknown>,
): Promise<string[]> {
  const hooks = (await listWebhooks(db, teamId)).filter((w) => w.events.includes(event));
  const ids: string[] = [];
  for (const hook of hooks) {
    const row = await db
      .insertInto('webhook_deliveries')
      .values({
        id: newId('whd'),
        webhook_id: hook.id,
        event,
        subject,
        payload: jsonb(payload),
        status: 'pending',
        last_status_code: null,
        last_error: null,
        finished_at: null,
      })
      .onConflict((oc) => oc.constraint('webhook_deliveries_once').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (row) ids.push(row.id);
  }
  return ids;
}

export async function recordAttempt(
  db: Db,
  id: string,
  attempt: { statusCode?: number; error?: string; status: WebhookDelivery['status'] },
): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      last_status_code: attempt.statusCode ?? null,
      last_error: attempt.error ?? null,
      status: attempt.status,
      finished_at: attempt.status === 'pending' ? null : new Date(),
    }))
    .where('id', '=', id)
    .execute();
}

export function deliveriesPage(db: Db, webhookId: string, page: PageRequest): Promise<Page<WebhookDelivery>> {
  return keysetPage(
    db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

/** A delivery still to be sent, with where and under which key; undefined once sent or its webhook gone. */
export async function pendingDelivery(db: Db, id: string) {
  const delivery = await db
    .selectFrom('webhook_deliveries')
    .innerJoin('webhooks', 'webhooks.id', 'webhook_deliveries.webhook_id')
    .select([
      'webhook_deliveries.id',
      'webhook_deliveries.event',
      'webhook_deliveries.payload',
      'webhook_deliveries.status',
      'webhooks.url',
      'webhooks.team_id',
      'webhooks.secret_id',
    ])
    .where('webhook_deliveries.id', '=', id)
    .executeTakeFirst();
  return delivery?.status === 'pending' ? delivery : undefined;
}

/** After the last retry: the delivery log says it failed, and why. */
export async function giveUpDelivery(db: Db, id: string, error: string): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'failed', last_error: error, finished_at: new Date() })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}
