import { createS3Client, type S3Location } from '../common/s3-client.ts';
import { BucketStore } from './bucket-store.ts';
import { ReceiverStore, type ReceiverAccess } from './receiver-store.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/** A destination's credentials in clear, for control-plane work on its objects; never for a response. */
export type DestinationAccess =
  | { kind: 's3'; bucket: string; prefix: string; location: S3Location }
  | ({ kind: 'receiver' } & ReceiverAccess);

/**
 * Where a team's destination keeps its objects. The composition roots build it over the database and the
 * vault, so the credentials are opened where they live and storage/ knows nothing of either.
 */
export type StoreOf = (teamId: string, destinationId: string) => Promise<SnapshotStore>;

export function openStore(access: DestinationAccess): SnapshotStore {
  if (access.kind === 'receiver') return new ReceiverStore(access);
  return new BucketStore(createS3Client(access.location), access.bucket, access.prefix);
}
