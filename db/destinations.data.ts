import { s3LocationOf, type DestinationConnection } from '../common/destination-spec.ts';
import { DomainError, isForeignKeyViolation, isUniqueViolation, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { TlsPin } from '../storage/pinned-client.ts';
import type { DestinationAccess } from '../storage/destination-store.ts';
import type { Db } from './database.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import type { Destination } from './tables/destination.table.ts';
import type { Vault } from './vault.ts';

const secretKind = 'destination-secret-key';
// A receiver's two secrets: the key its uploads are signed with, and the token that lets prunes delete.
export const writerKeyKind = 'receiver-writer-key';
export const pruneTokenKind = 'receiver-prune-token';

export interface DestinationInput extends DestinationConnection {
  name: string;
}

export function nameTaken(err: unknown, name: string): unknown {
  return isUniqueViolation(err, 'destinations_team_name')
    ? new DomainError(
        'conflict',
        'name_taken',
        `name: a destination named "${name}" already exists in this team`,
      )
    : err;
}

/** Stores a destination whose connection the caller has checked; checkedAt is when that check passed. */
export async function createDestination(
  db: Db,
  vault: Vault,
  teamId: string,
  input: DestinationInput,
  checkedAt: Date,
): Promise<Destination> {
  try {
    // The vault row and the destination land together, so a name conflict leaves no orphaned secret.
    return await db.transaction().execute(async (trx) => {
      const secretId = await vault.put(trx, {
        teamId,
        kind: secretKind,
        secret: Buffer.from(input.secretAccessKey, 'utf8'),
      });
      return trx
        .insertInto('destinations')
        .values({
          id: newId('dst'),
          team_id: teamId,
          name: input.name,
          kind: 's3',
          endpoint: input.endpoint,
          region: input.region,
          bucket: input.bucket,
          prefix: input.prefix,
          path_style: input.pathStyle,
          access_key_id: input.accessKeyId,
          secret_id: secretId,
          last_checked_at: checkedAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  } catch (err) {
    throw nameTaken(err, input.name);
  }
}

/** How a receiver destination's certificate is trusted. */
export function pinOf(destination: Destination): TlsPin {
  return destination.receiver_ca
    ? { ca: destination.receiver_ca }
    : { fingerprint: destination.receiver_fingerprint! };
}

export function destinationsPage(db: Db, teamId: string, page: PageRequest): Promise<Page<Destination>> {
  return keysetPage(
    db.selectFrom('destinations').selectAll().where('team_id', '=', teamId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

/** A team's destination; another team's is reported as not found, never as forbidden. */
export async function getDestination(db: Db, teamId: string, id: string): Promise<Destination> {
  const destination = await db
    .selectFrom('destinations')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!destination) throw notFound('destination', id);
  return destination;
}

/**
 * Applies a patch; a new secret replaces the old one in the vault. Connection changes must have been
 * checked by the caller, who passes checkedAt when it did.
 */
export async function updateDestination(
  db: Db,
  vault: Vault,
  teamId: string,
  id: string,
  patch: Partial<DestinationInput>,
  checkedAt?: Date,
): Promise<Destination> {
  try {
    return await db.transaction().execute(async (trx) => {
      // Locked, so two patches replacing the secret at once cannot both delete the same old one.
      const current = await trx
        .selectFrom('destinations')
        .select('secret_id')
        .where('team_id', '=', teamId)
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!current) throw notFound('destination', id);
      const secretId =
        patch.secretAccessKey === undefined
          ? current.secret_id
          : await vault.put(trx, {
              teamId,
              kind: secretKind,
              secret: Buffer.from(patch.secretAccessKey, 'utf8'),
            });
      const updated = await trx
        .updateTable('destinations')
        .set({
          ...(patch.name !== undefined && { name: patch.name }),
          ...(patch.endpoint !== undefined && { endpoint: patch.endpoint }),
          ...(patch.region !== undefined && { region: patch.region }),
          ...(patch.bucket !== undefined && { bucket: patch.bucket }),
          ...(patch.prefix !== undefined && { prefix: patch.prefix }),
          ...(patch.pathStyle !== undefined && { path_style: patch.pathStyle }),
          ...(patch.accessKeyId !== undefined && { access_key_id: patch.accessKeyId }),
          ...(checkedAt && { last_checked_at: checkedAt }),
          secret_id: secretId,
          updated_at: new Date(),
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      // The replaced secret goes at once: nothing else refers to it, and a sealed stale key is still a key.
      if (secretId !== current.secret_id)
        await trx.deleteFrom('vault_secrets').where('id', '=', current.secret_id).execute();
      return updated;
    });
  } catch (err) {
    throw nameTaken(err, patch.name ?? '');
  }
}

export async function recordChecked(db: Db, teamId: string, id: string, at: Date): Promise<Destination> {
  const updated = await db
    .updateTable('destinations')
    .set({ last_checked_at: at })
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!updated) throw notFound('destination', id);
  return updated;
}

/**
 * What still needs the destination, if anything, to name it in the refusal: snapshots are kept in it,
 * and deleting it would strand them. Written before the snapshots table existed; that table's foreign
 * key to destinations is the backstop meanwhile (deleteDestination turns its violation into the same 409).
 */
/** What still depends on a destination: its snapshots, which would be orphaned in strackt's records. */
async function destinationUser(db: Db, id: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('snapshots')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('destination_id', '=', id)
    .executeTakeFirstOrThrow();
  return Number(row.n) > 0 ? `${row.n} snapshot(s)` : undefined;
}

const inUse = (id: string, user: string) =>
  new DomainError(
    'conflict',
    'destination_in_use',
    `destination ${id} still holds ${user}; it cannot be removed`,
  );

export async function deleteDestination(db: Db, teamId: string, id: string): Promise<void> {
  const destination = await getDestination(db, teamId, id);
  const user = await destinationUser(db, id);
  if (user) throw inUse(id, user);
  try {
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('destinations').where('team_id', '=', teamId).where('id', '=', id).execute();
      await trx.deleteFrom('vault_secrets').where('id', '=', destination.secret_id).execute();
      if (destination.prune_secret_id)
        await trx.deleteFrom('vault_secrets').where('id', '=', destination.prune_secret_id).execute();
    });
  } catch (err) {
    if (isForeignKeyViolation(err)) throw inUse(id, 'snapshots');
    throw err;
  }
}

/** A destination's credentials opened from the vault, for control-plane work on its objects. */
export async function openDestination(
  db: Db,
  vault: Vault,
  teamId: string,
  id: string,
): Promise<DestinationAccess> {
  return openDestinationRow(db, vault, await getDestination(db, teamId, id));
}

/** As openDestination, for a row already read. */
export async function openDestinationRow(
  db: Db,
  vault: Vault,
  destination: Destination,
): Promise<DestinationAccess> {
  const teamId = destination.team_id;
  const receiver = destination.kind === 'receiver';
  const secret = await vault.open(db, teamId, destination.secret_id, receiver ? writerKeyKind : secretKind);
  if (receiver) {
    const pruneToken = await vault.open(db, teamId, destination.prune_secret_id!, pruneTokenKind);
    return {
      kind: 'receiver',
      url: destination.receiver_url!,
      pin: pinOf(destination),
      writerKey: secret,
      pruneToken: pruneToken.toString('utf8'),
    };
  }
  const connection = connectionOf(destination, secret.toString('utf8'));
  secret.fill(0);
  return {
    kind: 's3',
    bucket: connection.bucket,
    prefix: connection.prefix,
    location: s3LocationOf(connection),
  };
}

function connectionOf(destination: Destination, secretAccessKey: string): DestinationConnection {
  return {
    endpoint: destination.endpoint,
    region: destination.region!,
    bucket: destination.bucket!,
    prefix: destination.prefix,
    pathStyle: destination.path_style,
    accessKeyId: destination.access_key_id!,
    secretAccessKey,
  };
}

/** Whether the team has this destination. */
export async function destinationExists(db: Db, teamId: string, id: string): Promise<boolean> {
  const row = await db
    .selectFrom('destinations')
    .select('id')
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  return !!row;
}
