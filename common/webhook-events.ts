import { createHmac, timingSafeEqual } from 'node:crypto';

export const webhookEvents = [
  'backup.failed',
  'backup.missed',
  'restore.finished',
  'restore.failed',
  'snapshot.verification_failed',
] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

/** Older than this, a signed request is refused by a receiver that checks (replay protection). */
export const signatureToleranceSeconds = 300;

/**
 * `X-Strackt-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`, with the timestamp (unix
 * seconds) in `X-Strackt-Timestamp`: signing the timestamp with the body lets a receiver refuse an
 * old request replayed with a valid signature.
 */
export function signWebhook(secret: Buffer, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does: same signature, and a timestamp within the tolerance of its own clock. */
export function verifyWebhook(
  secret: Buffer,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  now = Math.floor(Date.now() / 1000),
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isInteger(timestamp) || Math.abs(now - timestamp) > signatureToleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(headers.signature ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
