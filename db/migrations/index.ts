import type { Migration } from 'kysely';
import * as foundation from './2026-11-26T0400-foundation.ts';
import * as vaultAndTeamKeys from './2026-11-26T0500-vault-and-team-keys.ts';
import * as destinations from './2026-11-26T0600-destinations.ts';
import * as snapshots from './2026-11-26T0610-snapshots.ts';
import * as restores from './2026-11-26T0700-restores.ts';
import * as backupStrategy from './2026-11-26T0710-backup-strategy.ts';
import * as backupSchedules from './2026-11-26T0800-backup-schedules.ts';
import * as webhooks from './2026-11-26T0810-webhooks.ts';
import * as retention from './2026-11-26T0820-retention.ts';
import * as receiverDestinations from './2026-11-26T0830-receiver-destinations.ts';
import * as verificationAndPrune from './2026-11-26T0840-verification-and-prune.ts';
import * as agentTasks from './2026-12-04T0900-agent-tasks.ts';
import * as operationTransfer from './2026-12-04T0910-operation-transfer.ts';
import * as idempotencyKeys from './2026-12-04T2200-idempotency-keys.ts';
import * as snapshotVolumes from './2026-12-04T2210-snapshot-volumes-and-list-order.ts';
import * as chunkIndex from './2026-12-05T0200-chunk-index.ts';
import * as snapshotVolumeMethods from './2026-12-05T0210-snapshot-volume-methods.ts';
import * as overviewIndexes from './2026-12-05T2300-overview-indexes.ts';
import * as packsBySnapshot from './2026-12-06T0100-packs-by-snapshot.ts';
import * as snapshotFormatVersion from './2026-12-06T0200-snapshot-format-version.ts';
import * as packsDeletingSince from './2026-12-06T0300-packs-deleting-since.ts';
import * as packsByServer from './2026-12-07T0100-packs-by-server.ts';

// Listed explicitly (not read from the folder) so the set of migrations is part of the build.
export const migrations: Record<string, Migration> = {
  '2026-11-26T0400-foundation': foundation,
  '2026-11-26T0500-vault-and-team-keys': vaultAndTeamKeys,
  '2026-11-26T0600-destinations': destinations,
  '2026-11-26T0610-snapshots': snapshots,
  '2026-11-26T0700-restores': restores,
  '2026-11-26T0710-backup-strategy': backupStrategy,
  '2026-11-26T0800-backup-schedules': backupSchedules,
  '2026-11-26T0810-webhooks': webhooks,
  '2026-11-26T0820-retention': retention,
  '2026-11-26T0830-receiver-destinations': receiverDestinations,
  '2026-11-26T0840-verification-and-prune': verificationAndPrune,
  '2026-12-04T0900-agent-tasks': agentTasks,
  '2026-12-04T0910-operation-transfer': operationTransfer,
  '2026-12-04T2200-idempotency-keys': idempotencyKeys,
  '2026-12-04T2210-snapshot-volumes-and-list-order': snapshotVolumes,
  '2026-12-05T0200-chunk-index': chunkIndex,
  '2026-12-05T0210-snapshot-volume-methods': snapshotVolumeMethods,
  '2026-12-05T2300-overview-indexes': overviewIndexes,
  '2026-12-06T0100-packs-by-snapshot': packsBySnapshot,
  '2026-12-06T0200-snapshot-format-version': snapshotFormatVersion,
  '2026-12-06T0300-packs-deleting-since': packsDeletingSince,
  '2026-12-07T0100-packs-by-server': packsByServer,
};
