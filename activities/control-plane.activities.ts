import type { Client } from '@temporalio/client';
import type { Db } from '../db/database.ts';
import { agentPresence } from '../db/servers.data.ts';
import type { Vault } from '../db/vault.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { createBackupActivities } from './backup.activities.ts';
import { createHostTaskActivities } from './host-tasks.activities.ts';
import { createOperationActivities } from './operations.activities.ts';
import { createPruneActivities } from './prune.activities.ts';
import { createRestoreActivities } from './restore.activities.ts';
import { createScheduleActivities } from './schedule.activities.ts';
import { createVerifyActivities } from './verify.activities.ts';
import { createWebhookActivities, notifier } from './webhook.activities.ts';

export interface ControlPlaneActivityDeps {
  db: Db;
  vault: Vault;
  /** Each destination's store, opened with its credentials. */
  storeOf: StoreOf;
  temporal: Client;
  agentStaleAfterMs: number;
  /** Where the control-plane workflows run: webhook deliveries are started there. */
  controlTaskQueue: string;
  /** The format new backups are written in (docs/FORMAT.md). */
  snapshotFormat: 1 | 2;
}

/** Every activity the control-plane worker runs: the database, the vault, the buckets and the agents' tasks. */
export function createControlPlaneActivities({
  db,
  vault,
  storeOf,
  temporal,
  agentStaleAfterMs,
  controlTaskQueue,
  snapshotFormat,
}: ControlPlaneActivityDeps) {
  const notify = notifier({ db, temporal, controlTaskQueue });
  const agentConnected = async (serverId: string) =>
    (await agentPresence(db, serverId, agentStaleAfterMs)).connected;
  return {
    ...createOperationActivities({ db, notify }),
    ...createBackupActivities({ db, storeOf, snapshotFormat }),
    ...createScheduleActivities({ db, notify, agentStaleAfterMs }),
    ...createWebhookActivities({ db, vault }),
    ...createRestoreActivities({ db, vault, storeOf, agentConnected }),
    ...createVerifyActivities({ db, vault, storeOf, notify }),
    ...createPruneActivities({ db, vault, storeOf }),
    ...createHostTaskActivities({ db, agentStaleAfterMs }),
  };
}
