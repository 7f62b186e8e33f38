import type { Client } from '@temporalio/client';
import { agentPresence } from '../common/agent-presence.ts';
import type { Db } from '../db/database.ts';
import type { Vault } from '../db/vault.ts';
import { createBackupActivities } from './backup.activities.ts';
import { createOperationActivities } from './operations.activities.ts';
import { createRestoreActivities } from './restore.activities.ts';
import { createScheduleActivities } from './schedule.activities.ts';

export interface ControlPlaneActivityDeps {
  db: Db;
  vault: Vault;
  temporal: Client;
  agentStaleAfterMs: number;
}

/** Every activity the control-plane worker runs: the database, the vault and the buckets. */
export function createControlPlaneActivities({
  db,
  vault,
  temporal,
  agentStaleAfterMs,
}: ControlPlaneActivityDeps) {
  return {
    ...createOperationActivities({ db }),
    ...createBackupActivities({ db, vault }),
    ...createScheduleActivities({ db }),
    ...createRestoreActivities({
      db,
      vault,
      agentConnected: async (serverId) =>
        (await agentPresence(temporal, serverId, agentStaleAfterMs)).connected,
    }),
  };
}
