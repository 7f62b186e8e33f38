import type { ColumnType, Generated, RawBuilder, Selectable } from 'kysely';
import type { WebhookEvent } from '../../common/webhook-events.ts';

export interface WebhookTable {
  id: string;
  team_id: string;
  url: string;
  events: ColumnType<WebhookEvent[], RawBuilder<WebhookEvent[]>, RawBuilder<WebhookEvent[]>>;
  secret_id: string;
  created_at: Generated<Date>;
}
export type Webhook = Selectable<WebhookTable>;

export interface WebhookDeliveryTable {
  id: string;
  webhook_id: string;
  event: WebhookEvent;
  subject: string;
  payload: ColumnType<Record<string, unknown>, RawBuilder<Record<string, unknown>>, never>;
  status: 'pending' | 'delivered' | 'failed';
  attempts: Generated<number>;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Generated<Date>;
  finished_at: Date | null;
}
export type WebhookDelivery = Selectable<WebhookDeliveryTable>;
