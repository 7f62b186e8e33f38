import { connectionFields, s3LocationOf, type DestinationConnection } from '../common/destination-spec.ts';
import { invalid } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import {
  createDestination,
  deleteDestination,
  openDestination,
  recordChecked,
  updateDestination,
  type DestinationInput,
} from '../db/destinations.data.ts';
import { createReceiverDestination, type ReceiverInput } from '../db/receiver-destinations.data.ts';
import type { Destination } from '../db/tables/destination.table.ts';
import { createTeamKeyIfMissing } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { checkDestination } from '../storage/connectivity-check.ts';
import { checkReceiver, enrolReceiver } from '../storage/receiver-enrolment.ts';

// A destination is stored only once it has been shown to work: a bucket after the write, read back and
// delete of a probe object; a receiver after it took its credentials and answered with them.

interface Store {
  db: Db;
  vault: Vault;
}

export type NewDestination =
  ({ kind: 's3' } & DestinationInput) | ({ kind: 'receiver'; enrolmentCode: string } & ReceiverInput);

/** Checks and stores a destination; the team's key is made with its first one (and answered once). */
export async function connectDestination({ db, vault }: Store, teamId: string, input: NewDestination) {
  let destination: Destination;
  if (input.kind === 'receiver') {
    const { url, pin } = input;
    destination = await createReceiverDestination(db, vault, teamId, input, async (credentials) => {
      await enrolReceiver(url, pin, input.enrolmentCode, credentials);
      await checkReceiver({ url, pin, ...credentials });
    });
  } else {
    await checkDestination(s3LocationOf(input), input.bucket, input.prefix);
    destination = await createDestination(db, vault, teamId, input, new Date());
  }
  try {
    return { destination, teamKey: await createTeamKeyIfMissing(db, vault, teamId) };
  } catch (err) {
    // Undone, so the same request can simply be sent again rather than meeting name_taken.
    await deleteDestination(db, teamId, destination.id);
    throw err;
  }
}

/** Applies a change; one that touches the connection is checked first and refused if it fails. */
export async function changeDestination(
  { db, vault }: Store,
  teamId: string,
  id: string,
  patch: Partial<DestinationInput>,
): Promise<Destination> {
  let checkedAt: Date | undefined;
  const changed = connectionFields.find((field) => patch[field] !== undefined);
  if (changed) {
    const current = await openDestination(db, vault, teamId, id);
    if (current.kind !== 's3')
      throw invalid(changed, `a receiver has no ${changed}; only its name can change`);
    const next: DestinationConnection = {
      endpoint: patch.endpoint === undefined ? (current.location.endpoint ?? null) : patch.endpoint,
      region: patch.region ?? current.location.region,
      bucket: patch.bucket ?? current.bucket,
      prefix: patch.prefix ?? current.prefix,
      pathStyle: patch.pathStyle ?? current.location.forcePathStyle,
      accessKeyId: patch.accessKeyId ?? current.location.accessKeyId,
      secretAccessKey: patch.secretAccessKey ?? current.location.secretAccessKey,
    };
    await checkDestination(s3LocationOf(next), next.bucket, next.prefix);
    checkedAt = new Date();
  }
  return updateDestination(db, vault, teamId, id, patch, checkedAt);
}

/** Runs the destination's connectivity check again and records when it passed. */
export async function recheckDestination(
  { db, vault }: Store,
  teamId: string,
  id: string,
): Promise<Destination> {
  const access = await openDestination(db, vault, teamId, id);
  if (access.kind === 'receiver') await checkReceiver(access);
  else await checkDestination(access.location, access.bucket, access.prefix);
  return recordChecked(db, teamId, id, new Date());
}
