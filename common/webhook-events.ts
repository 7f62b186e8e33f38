import { createHmac } from 'node:crypto';

export const webhookEvents = [
  'backup.succeeded',
  'backup.failed',
  'backup.missed',
  'restore.finished',
  'restore.failed',
  'snapshot.verification_failed',
] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

/**
 * A new webhook's events when none are named: those sent before webhooks had a choice. A success on
 * every backup is opt-in; a team that never asked for it is not paged by it.
 */
export const defaultWebhookEvents: WebhookEvent[] = webhookEvents.filter((e) => e !== 'backup.succeeded');

/** Each event once, in the order above, whatever order or repeats a request had. */
export const normalizeEvents = (events: readonly WebhookEvent[]): WebhookEvent[] =>
  webhookEvents.filter((e) => events.includes(e));

/** Standard Webhooks' verifiers refuse a timestamp further than this from their clock (replay protection). */
export const signatureToleranceSeconds = 300;

/**
 * The secret as shown to its owner, in Standard Webhooks' format: `whsec_` + the base64 of the key
 * bytes, which is what `new Webhook(secret)` of the standardwebhooks libraries decodes.
 */
export const webhookSecret = (key: Buffer): string => `whsec_${key.toString('base64')}`;

/**
 * The `webhook-signature` header of Standard Webhooks (https://www.standardwebhooks.com): `v1,` + the
 * base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`. The id is the delivery's, the same
 * on every retry, so a receiver can drop a delivery it already handled; the signed timestamp lets it
 * refuse an old request replayed with a valid signature.
 */
export function signWebhook(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}
