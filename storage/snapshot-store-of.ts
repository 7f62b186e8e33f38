import { createS3Client } from '../common/s3-client.ts';
import type { Db } from '../db/database.ts';
import { openDestination } from '../db/destinations.data.ts';
import type { Snapshot } from '../db/tables/snapshot.table.ts';
import type { Vault } from '../db/vault.ts';
import { BucketStore } from './bucket-store.ts';
import { ReceiverStore } from './receiver-store.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/** Where a snapshot's objects live, with credentials that never leave the control plane. */
export async function snapshotStore(
  db: Db,
  vault: Vault,
  snapshot: Pick<Snapshot, 'team_id' | 'destination_id'>,
): Promise<SnapshotStore> {
  const access = await openDestination(db, vault, snapshot.team_id, snapshot.destination_id);
  if (access.kind === 'receiver') return new ReceiverStore(access);
  return new BucketStore(createS3Client(access.location), access.bucket, access.prefix);
}
