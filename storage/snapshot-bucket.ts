import { createS3Client } from '../common/s3-client.ts';
import type { Db } from '../db/database.ts';
import { openDestination } from '../db/destinations.data.ts';
import type { Snapshot } from '../db/tables/snapshot.table.ts';
import type { Vault } from '../db/vault.ts';

/** The bucket a snapshot lives in, with a client holding credentials that never leave the control plane. */
export async function snapshotBucket(
  db: Db,
  vault: Vault,
  snapshot: Pick<Snapshot, 'team_id' | 'destination_id'>,
) {
  const destination = await openDestination(db, vault, snapshot.team_id, snapshot.destination_id);
  return {
    s3: createS3Client(destination.location),
    bucket: destination.bucket,
    prefix: destination.prefix,
  };
}
