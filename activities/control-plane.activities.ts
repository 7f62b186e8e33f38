import type { Client } from '@temporalio/client';
import { agentPresence } from '../common/agent-presence.ts';
import type { Db } from '../db/database.ts';
import type { Vault } from '../db/vault.ts';
import { createBackupActivities } from './backup.activities.ts';
import { createOperationActivities } from './operations.activities.ts';
import { createPruneActivities } from './prune.activities.ts';
import { createRestoreActivities } from './restore.activities.ts';
import { createScheduleActivities } from './schedule.activities.ts';
import { createVerifyActivities } from './verify.activities.ts';
import { createWebhookActivities, notifier } from './webhook.activities.ts';

export interface ControlPlaneActivityDeps {
  db: Db;
  vault: Vault;
  temporal: Client;
  agentStaleAfterMs: number;
  /** Where the control-plane workflows run: webhook deliveries are started there. */
  controlTaskQueue: string;
}

/** Every activity the control-plane worker runs: the database, the vault and the buckets. */
export function createControlPlaneActivities({
  db,
  vault,
  temporal,
  agentStaleAfterMs,
  controlTaskQueue,
}: ControlPlaneActivityDeps) {
  const notify = notifier({ db, temporal, controlTaskQueue });
  const agentConnected = async (serverId: string) =>
    (await agentPresence(temporal, serverId, agentStaleAfterMs)).connected;
  return {
    ...createOperationActivities({ db, notify }),
    ...createBackupActivities({ db, vault }),
    ...createScheduleActivities({ db, notify, agentConnected }),
    ...createWebhookActivities({ db, vault }),
    ...createRestoreActivities({ db, vault, agentConnected }),
    ...createVerifyActivities({ db, vault, notify }),
    ...createPruneActivities({ db, vault }),
  };
}
