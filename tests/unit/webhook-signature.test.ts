import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { signWebhook, webhookSecret } from '../../common/webhook-events.ts';

const body = '{"event":"backup.succeeded","operationId":"op_1"}';
const now = Math.floor(Date.now() / 1000);
const headers = (key: Buffer, id = 'whd_1', timestamp = now) => ({
  'webhook-id': id,
  'webhook-timestamp': String(timestamp),
  'webhook-signature': signWebhook(key, id, timestamp, body),
});

describe('webhook signatures (Standard Webhooks)', () => {
  it('are what the standardwebhooks verifier accepts with the secret as shown', () => {
    const key = randomBytes(32);
    assert.deepEqual(new Webhook(webhookSecret(key)).verify(body, headers(key)), JSON.parse(body));
    assert.throws(
      () => new Webhook(webhookSecret(key)).verify(`${body} `, headers(key)),
      WebhookVerificationError,
    );
    assert.throws(
      () => new Webhook(webhookSecret(key)).verify(body, headers(key, 'whd_1', now - 600)),
      WebhookVerificationError,
      'a replay ten minutes later',
    );
  });

  it('keep a webhook made before them verifiable: its key is the UTF-8 of the old secret', () => {
    const oldSecret = randomBytes(32).toString('base64url');
    const key = Buffer.from(oldSecret);
    new Webhook(oldSecret, { format: 'raw' }).verify(body, headers(key));
    new Webhook(`whsec_${key.toString('base64')}`).verify(body, headers(key));
  });
});
