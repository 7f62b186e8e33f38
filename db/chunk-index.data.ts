import { sql, type SqlBool, type Transaction } from 'kysely';
import { DomainError, invalid, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { chunkIdBytes } from '../format/v2/chunk-id.ts';
import type { Database, Db } from './database.ts';
import type { Pack } from './tables/pack.table.ts';

// Format 2's chunk index (docs/ARCHITECTURE.md, "Chunk index (format 2)"). Every write that makes a
// backup rely on chunks takes its destination's row lock shared; garbage collection takes it
// exclusive to choose what to delete (chunk-gc.data.ts), so it never decides on a stale view.

// Well under PostgreSQL's 65,535 parameters per statement, with up to 7 columns a row.
const batchSize = 5000;

export function batches<T>(items: T[], size = batchSize): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The ids once each, refused unless each is a chunk id's 32 bytes. */
function distinctIds(ids: Buffer[]): Buffer[] {
  const seen = new Map<string, Buffer>();
  for (const id of ids) {
    if (id.length !== chunkIdBytes) throw invalid('chunks', `a chunk id is ${chunkIdBytes} bytes`);
    seen.set(id.toString('hex'), id);
  }
  return [...seen.values()];
}

/**
 * The ids as rows of one column, sent as a single array: a statement naming thousands of parameters
 * costs the driver and PostgreSQL more than its lookups do (measured with 10,000 held chunks: asked
 * for and recorded in 0.35-0.41 s, the API's own CPU 0.13-0.16 s, that way; 0.24-0.38 s and
 * 0.05-0.10 s this way). Joined, not used as `in (...)`: the planner then looks each id up by index,
 * where it chose to scan the table once per id (10 s for 10,000).
 */
function idRows(ids: Buffer[]) {
  const hex = ids.map((id) => id.toString('hex'));
  return sql<{ chunk_id: Buffer }>`(select decode(h, 'hex') as chunk_id from unnest(${hex}::text[]) h)`.as(
    'ids',
  );
}

export async function lockDestinationIndex(
  trx: Transaction<Database>,
  destinationId: string,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const row = trx.selectFrom('destinations').select('id').where('id', '=', destinationId);
  await (mode === 'shared' ? row.forKeyShare() : row.forUpdate()).execute();
}

/**
 * A backup in flight (of `serverId` when given, else any server's), found in the statement that takes
 * its destination's lock shared: one round trip, where an ask is made every few MiB a backup reads.
 */
async function lockedUpload(trx: Transaction<Database>, snapshotId: string, serverId: string | undefined) {
  let query = trx
    .selectFrom('snapshots')
    .innerJoin('destinations', 'destinations.id', 'snapshots.destination_id')
    .select([
      'snapshots.id',
      'snapshots.destination_id',
      'snapshots.environment_id',
      'snapshots.source_server_id',
    ])
    .where('snapshots.id', '=', snapshotId)
    .where('snapshots.status', '=', 'uploading');
  if (serverId !== undefined) query = query.where('snapshots.source_server_id', '=', serverId);
  const snapshot = await query.forKeyShare('destinations').executeTakeFirst();
  if (!snapshot) throw notFound('snapshot upload', snapshotId);
  return snapshot;
}

async function uploadingSnapshot(trx: Transaction<Database>, snapshotId: string) {
  const snapshot = await trx
    .selectFrom('snapshots')
    .select(['id', 'team_id', 'destination_id', 'environment_id', 'source_server_id'])
    .where('id', '=', snapshotId)
    .where('status', '=', 'uploading')
    .executeTakeFirst();
  if (!snapshot) throw notFound('snapshot upload', snapshotId);
  return snapshot;
}

/**
 * Claims are inserted in chunk id order, here and by chunksToUpload: a backup asks about several
 * batches at once, which may name the same chunks in other orders, and two inserts of one key wait
 * on each other; in the same order one waits for the other, in others they could deadlock (seen in
 * the benchmark's backups of unchanged data, whose binaries are copies of each other).
 */
async function claim(trx: Transaction<Database>, snapshotId: string, ids: Buffer[]): Promise<void> {
  await trx
    .insertInto('chunk_claims')
    .columns(['snapshot_id', 'chunk_id'])
    .expression((eb) =>
      eb
        .selectFrom(idRows(ids))
        .select([eb.val(snapshotId).as('snapshot_id'), 'ids.chunk_id'])
        .orderBy('ids.chunk_id'),
    )
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/**
 * Of the chunks a backup in flight is about to store, those its destination lacks: the agent uploads
 * these and references the others, which this claims for the backup in the same transaction so that
 * garbage collection keeps them. A chunk counts as held only in a stored pack, from a blob not marked
 * bad, and only if the backup's own environment or its own server's agent stored that blob, or the
 * control plane verified it: an agent can seal garbage under a known id, and that must not stop the
 * environments of other servers from uploading the real chunk (docs/SECURITY.md); the environments of
 * its own server it could spoil anyway, holding their data. `serverId`: only of that server's backup.
 */
export async function chunksToUpload(
  db: Db,
  snapshotId: string,
  ids: Buffer[],
  serverId?: string,
): Promise<Buffer[]> {
  const wanted = distinctIds(ids);
  return db.transaction().execute(async (trx) => {
    // The lock taken first, in a statement of its own: the lookup below then reads the index as
    // garbage collection left it (each statement of a read-committed transaction sees what was
    // committed when it began).
    const backup = await lockedUpload(trx, snapshotId, serverId);
    const rows = await trx
      .with('held', (q) =>
        q
          .selectFrom(idRows(wanted))
          // Looked up id by id, each by the chunk index and its pack by key, in a plan the statistics
          // cannot change: joined, the planner (misled by statistics taken while the tables were
          // small) looped over every stored pack of the destination for each id (some 10 ms an ask
          // of 16 ids at 10 GiB), or read the whole chunk table for a large ask. A lateral subquery
          // with a limit is never flattened, nor a scalar subquery made a join.
          .innerJoinLateral(
            (eb) =>
              eb
                .selectFrom('pack_chunks')
                .select(sql<number>`1`.as('one'))
                .whereRef('pack_chunks.chunk_id', '=', 'ids.chunk_id')
                .where('pack_chunks.bad_at', 'is', null)
                .where(
                  (eb) =>
                    sql<SqlBool>`(${eb
                      .selectFrom('packs')
                      .select((p) =>
                        p
                          .and([
                            p('packs.destination_id', '=', backup.destination_id),
                            p('packs.status', '=', 'stored'),
                            p.or([
                              p('packs.environment_id', '=', backup.environment_id),
                              p('packs.server_id', '=', backup.source_server_id),
                              p('pack_chunks.verified_at', 'is not', null),
                            ]),
                          ])
                          .as('held'),
                      )
                      .whereRef('packs.id', '=', 'pack_chunks.pack_id')})`,
                )
                .limit(1)
                .as('copy'),
            (join) => join.onTrue(),
          )
          .select('ids.chunk_id'),
      )
      .with('claimed', (q) =>
        q
          .insertInto('chunk_claims')
          .columns(['snapshot_id', 'chunk_id'])
          // In chunk id order, as claim() explains.
          .expression((eb) =>
            eb
              .selectFrom('held')
              .select([eb.val(snapshotId).as('snapshot_id'), 'held.chunk_id'])
              .orderBy('held.chunk_id'),
          )
          .onConflict((oc) => oc.doNothing()),
      )
      .selectFrom('held')
      .select('held.chunk_id')
      .execute();
    const held = new Set(rows.map((r) => r.chunk_id.toString('hex')));
    return wanted.filter((id) => !held.has(id.toString('hex')));
  });
}

/**
 * Registers a pack before its PUT URL is presigned: by a backup in flight (its team, destination and
 * environment are the snapshot's), or by the control plane repacking.
 */
export async function startPack(
  db: Db,
  p: { objectKey: string } & ({ snapshotId: string } | { teamId: string; destinationId: string }),
): Promise<Pack> {
  return db.transaction().execute(async (trx) => {
    const owner =
      'snapshotId' in p
        ? await uploadingSnapshot(trx, p.snapshotId)
        : {
            id: null,
            team_id: p.teamId,
            destination_id: p.destinationId,
            environment_id: null,
            source_server_id: null,
          };
    return trx
      .insertInto('packs')
      .values({
        id: newId('pack'),
        team_id: owner.team_id,
        destination_id: owner.destination_id,
        environment_id: owner.environment_id,
        server_id: owner.source_server_id,
        snapshot_id: owner.id,
        object_key: p.objectKey,
        size_bytes: null,
        status: 'uploading',
        stored_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

/** A pack a backup in flight registered, else undefined: an agent reports only on its own backup's packs. */
export function packOfSnapshot(db: Db, snapshotId: string, packId: string): Promise<Pack | undefined> {
  return db
    .selectFrom('packs')
    .selectAll()
    .where('id', '=', packId)
    .where('snapshot_id', '=', snapshotId)
    .executeTakeFirst();
}

/** The packs a backup registered and has not had recorded: in flight, or refused and left for collection. */
export async function unrecordedPackCount(db: Db, snapshotId: string): Promise<number> {
  const { n } = await db
    .selectFrom('packs')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('snapshot_id', '=', snapshotId)
    .where('status', '=', 'uploading')
    .executeTakeFirstOrThrow();
  return Number(n);
}

export interface PackEntry {
  chunkId: Buffer;
  offset: number;
  length: number;
  rawLength: number;
}

/**
 * Records a pack as stored, with its index, once its upload has been checked. `verified` says the
 * control plane opened every blob and checked its chunk id (a repack does). The chunks are claimed
 * for the backup that wrote the pack, which references them only at its end. Again for a pack
 * already stored: nothing changes (an activity retried).
 */
export async function packStored(
  db: Db,
  packId: string,
  p: { sizeBytes: number; entries: PackEntry[]; verified: boolean },
): Promise<void> {
  distinctIds(p.entries.map((e) => e.chunkId));
  await db.transaction().execute(async (trx) => {
    const found = await trx
      .selectFrom('packs')
      .select('destination_id')
      .where('id', '=', packId)
      .executeTakeFirst();
    if (!found) throw notFound('pack', packId);
    // The destination before the pack's row: garbage collection locks in that order too.
    await lockDestinationIndex(trx, found.destination_id, 'shared');
    const pack = await trx
      .selectFrom('packs')
      .select(['status', 'snapshot_id'])
      .where('id', '=', packId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (pack.status === 'stored') return;
    if (pack.status === 'deleting')
      throw new DomainError('conflict', 'pack_deleting', `pack ${packId} was given up and is being deleted`);
    const verifiedAt = p.verified ? new Date() : null;
    for (const batch of batches(p.entries))
      await trx
        .insertInto('pack_chunks')
        .values(
          batch.map((e) => ({
            pack_id: packId,
            chunk_id: e.chunkId,
            offset: e.offset,
            length: e.length,
            raw_length: e.rawLength,
            verified_at: verifiedAt,
            bad_at: null,
          })),
        )
        .execute();
    await trx
      .updateTable('packs')
      .set({ status: 'stored', size_bytes: p.sizeBytes, stored_at: new Date() })
      .where('id', '=', packId)
      .execute();
    if (pack.snapshot_id)
      await claim(
        trx,
        pack.snapshot_id,
        p.entries.map((e) => e.chunkId),
      );
  });
}

/**
 * Chunks a format-2 snapshot references, reported by its agent in batches at the end of the backup,
 * before it is marked complete. Each must have been claimed by this backup (found held, or uploaded
 * by it): a chunk never claimed may be collected at any moment, and the snapshot would reference it
 * missing. The claims stay while the backup runs (a later batch may name a chunk again); garbage
 * collection drops those of backups that ended. `serverId`: only of that server's backup.
 */
export async function recordSnapshotChunks(
  db: Db,
  snapshotId: string,
  ids: Buffer[],
  serverId?: string,
): Promise<void> {
  const referenced = distinctIds(ids);
  await db.transaction().execute(async (trx) => {
    await lockedUpload(trx, snapshotId, serverId);
    // Recorded in the statement that counts the claims: a shortfall throws, and the transaction with
    // it leaves nothing recorded.
    const { n } = await trx
      .with('claimed', (q) =>
        q
          .selectFrom(idRows(referenced))
          .innerJoin('chunk_claims as c', 'c.chunk_id', 'ids.chunk_id')
          .select('c.chunk_id')
          .where('c.snapshot_id', '=', snapshotId),
      )
      .with('recorded', (q) =>
        q
          .insertInto('snapshot_chunks')
          .columns(['snapshot_id', 'chunk_id'])
          .expression((eb) =>
            eb.selectFrom('claimed').select([eb.val(snapshotId).as('snapshot_id'), 'claimed.chunk_id']),
          )
          .onConflict((oc) => oc.doNothing()),
      )
      .selectFrom('claimed')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(n) !== referenced.length)
      throw new DomainError(
        'invalid',
        'chunks_not_claimed',
        `${referenced.length - Number(n)} of the snapshot's chunks were neither found held nor uploaded by this backup`,
      );
  });
}

/** How many chunk references of a format-2 snapshot are recorded. */
export async function countSnapshotChunks(db: Db, snapshotId: string): Promise<number> {
  const { n } = await db
    .selectFrom('snapshot_chunks')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('snapshot_id', '=', snapshotId)
    .executeTakeFirstOrThrow();
  return Number(n);
}
