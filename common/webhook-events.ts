import { createHmac } from 'node:crypto';

export const webhookEvents = [
  'backup.failed',
  'backup.missed',
  'restore.finished',
  'restore.failed',
  'snapshot.verification_failed',
] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

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
