import { ApplicationFailure, log } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { signWebhook, type WebhookEvent } from '../common/webhook-events.ts';
import { startWebhookDelivery } from '../common/workflow-starts.ts';
import type { Db } from '../db/database.ts';
import type { Vault } from '../db/vault.ts';
import {
  enqueueDeliveries,
  giveUpDelivery,
  pendingDelivery,
  recordAttempt,
  webhookSecretKind,
} from '../db/webhooks.data.ts';
import { postWebhook, unreachableReason } from './webhook-request.ts';

export interface Notify {
  (input: {
    teamId: string;
    event: WebhookEvent;
    subject: string;
    payload: Record<string, unknown>;
  }): Promise<void>;
}

/**
 * Queues an event for the team's webhooks: a delivery row each, and a workflow each that sends it
 * with retries and backoff (deliverWebhook). Inside activities only; idempotent per event and subject.
 */
export function notifier({
  db,
  temporal,
  controlTaskQueue,
}: {
  db: Db;
  temporal: Client;
  controlTaskQueue: string;
}): Notify {
  return async ({ teamId, event, subject, payload }) => {
    const ids = await enqueueDeliveries(db, teamId, event, subject, {
      event,
      ...payload,
      occurredAt: new Date().toISOString(),
    });
    for (const deliveryId of ids) {
      // Found with the team's other workflows (the Temporal UI, `temporal workflow list`).
      await startWebhookDelivery({ temporal, controlTaskQueue }, { teamId, deliveryId }).catch(
        (err: unknown) => {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        },
      );
    }
  };
}

/** Sends one delivery. The signing key is read from the vault here, never passed through Temporal. */
export function createWebhookActivities({ db, vault }: { db: Db; vault: Vault }) {
  return {
    async sendWebhook({ deliveryId }: { deliveryId: string }): Promise<void> {
      const delivery = await pendingDelivery(db, deliveryId);
      // The webhook was deleted meanwhile, or a retry finds it sent: nothing to do.
      if (!delivery) return;
      const secret = await vault.open(db, delivery.team_id, delivery.secret_id, webhookSecretKind);
      const body = JSON.stringify(delivery.payload);
      const timestamp = Math.floor(Date.now() / 1000);
      let status: number;
      try {
        status = await postWebhook(
          new URL(delivery.url),
          // Standard Webhooks' headers only: its verifiers (any language) check them as they are;
          // the event is in the body.
          {
            'content-type': 'application/json',
            'user-agent': 'strackt-webhooks',
            'webhook-id': delivery.id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': signWebhook(secret, delivery.id, timestamp, body),
          },
          body,
          10_000,
        );
      } catch (err) {
        const error = `could not reach ${new URL(delivery.url).host}: ${unreachableReason(err)}`;
        await recordAttempt(db, deliveryId, { error, status: 'pending' });
        throw ApplicationFailure.retryable(error, 'WebhookUnreachable');
      } finally {
        secret.fill(0);
      }
      if (status < 200 || status >= 300) {
        const error = `the receiver answered HTTP ${status}`;
        await recordAttempt(db, deliveryId, { statusCode: status, error, status: 'pending' });
        throw ApplicationFailure.retryable(error, 'WebhookRefused');
      }
      await recordAttempt(db, deliveryId, { statusCode: status, status: 'delivered' });
      log.info('webhook delivered', { deliveryId, event: delivery.event, status });
    },

    /** After the last retry: the delivery log says it failed, and why. */
    async giveUpWebhook({ deliveryId, error }: { deliveryId: string; error: string }): Promise<void> {
      await giveUpDelivery(db, deliveryId, error);
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
