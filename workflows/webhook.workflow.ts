import { proxyActivities } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhook.activities.ts';
import { failureMessage } from './operation-tracker.ts';

// Backoff from 5 s doubling to 10 min, 10 attempts: a receiver down for about an hour still gets it.
const { sendWebhook } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '10 minutes',
    maximumAttempts: 10,
  },
});
const { giveUpWebhook } = proxyActivities<WebhookActivities>({ startToCloseTimeout: '30 seconds' });

// Workflow names live in histories: never rename this function.
/** One webhook delivery, retried with backoff until the receiver answers 2xx or the attempts run out. */
export async function deliverWebhook({ deliveryId }: { deliveryId: string }): Promise<void> {
  try {
    await sendWebhook({ deliveryId });
  } catch (err) {
    await giveUpWebhook({ deliveryId, error: failureMessage(err) });
    throw err;
  }
}
