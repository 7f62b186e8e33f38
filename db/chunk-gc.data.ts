import { sql, type Transaction } from 'kysely';
import { activeStatuses } from '../common/operations.ts';
import { batches, lockDestinationIndex } from './chunk-index.data.ts';
import type { Database, Db } from './database.ts';

// Garbage collection of format 2's chunks: what no kept snapshot and no backup in flight needs.

/**
 * Repack a pack once less than half of its bytes are live: copying its live blobs then frees at
 * least as many bytes as it writes, and no destination holds more than about twice its live data.
 */
const repackBelow = 0.5;

// A pack a backup left uploading is collected only once its PUT URL (an hour, storage/presign.ts)
// has expired with room to spare, so no late upload lands after its object is deleted.
const abandonedAfter = sql<Date>`now() - interval '2 hours'`;

/**
 * The chunks live on a destination: those referenced by its complete snapshots or by snapshots still
 * uploading (reported, not yet marked complete), and those claimed by backups in flight. A snapshot
 * being pruned (deleting), failed or deleted holds none.
 */
function liveChunks(db: Db | Transaction<Database>, destinationId: string) {
  return db
    .selectFrom('snapshot_chunks')
    .innerJoin('snapshots', 'snapshots.id', 'snapshot_chunks.snapshot_id')
    .select('snapshot_chunks.chunk_id')
    .where('snapshots.destination_id', '=', destinationId)
    .where('snapshots.status', 'in', ['uploading', 'complete'])
    .union(
      db
        .selectFrom('chunk_claims')
        .innerJoin('snapshots', 'snapshots.id', 'chunk_claims.snapshot_id')
        .select('chunk_claims.chunk_id')
        .where('snapshots.destination_id', '=', destinationId)
        .where('snapshots.status', '=', 'uploading'),
    );
}

export interface PackToGo {
  id: string;
  objectKey: string;
}

export interface Garbage {
  /** Chunks on the destination that nothing live references. */
  deadChunks: Buffer[];
  /** Packs with nothing live, abandoned uploads, and packs whose deletion a crash interrupted. */
  packsToDelete: PackToGo[];
  /** Packs with some live chunks, but less than half of their bytes. */
  packsToRepack: (PackToGo & { sizeBytes: number; liveBytes: number })[];
}

/** What garbage collection would do now on a destination; markPacksDeleting decides under lock. */
export async function garbage(db: Db, destinationId: string): Promise<Garbage> {
  const live = liveChunks(db, destinationId);
  const deadChunks = await db
    .selectFrom('pack_chunks')
    .innerJoin('packs', 'packs.id', 'pack_chunks.pack_id')
    .select('pack_chunks.chunk_id')
    .distinct()
    .where('packs.destination_id', '=', destinationId)
    .where('packs.status', '=', 'stored')
    .where((eb) => eb.not(eb('pack_chunks.chunk_id', 'in', live)))
    .execute();
  const stored = await db
    .selectFrom('packs')
    .leftJoin('pack_chunks', 'pack_chunks.pack_id', 'packs.id')
    .select((eb) => [
      'packs.id',
      'packs.object_key',
      'packs.size_bytes',
      eb.fn.countAll<string>().filterWhere('pack_chunks.chunk_id', 'in', live).as('live_chunks'),
      eb.fn
        .sum<string | null>('pack_chunks.length')
        .filterWhere('pack_chunks.chunk_id', 'in', live)
        .as('live_bytes'),
    ])
    .where('packs.destination_id', '=', destinationId)
    .where('packs.status', '=', 'stored')
    .groupBy('packs.id')
    .orderBy('packs.created_at')
    .execute();
  const leftOver = await goneOrAbandoned(db, destinationId).execute();
  const packsToDelete = [...stored.filter((p) => Number(p.live_chunks) === 0), ...leftOver];
  const packsToRepack = stored
    .map((p) => ({ ...p, sizeBytes: Number(p.size_bytes), liveBytes: Number(p.live_bytes ?? 0) }))
    .filter((p) => Number(p.live_chunks) > 0 && p.liveBytes < p.sizeBytes * repackBelow);
  return {
    deadChunks: deadChunks.map((r) => r.chunk_id),
    packsToDelete: packsToDelete.map((p) => ({ id: p.id, objectKey: p.object_key })),
    packsToRepack: packsToRepack.map((p) => ({
      id: p.id,
      objectKey: p.object_key,
      sizeBytes: p.sizeBytes,
      liveBytes: p.liveBytes,
    })),
  };
}

/**
 * Packs already deleting (a crash left them), uploads whose backup ended without them, and repacks a
 * crash cut short before their pack was recorded stored.
 */
function goneOrAbandoned(db: Db | Transaction<Database>, destinationId: string) {
  return db
    .selectFrom('packs')
    .leftJoin('snapshots', 'snapshots.id', 'packs.snapshot_id')
    .select(['packs.id', 'packs.object_key'])
    .where('packs.destination_id', '=', destinationId)
    .where((eb) =>
      eb.or([
        eb('packs.status', '=', 'deleting'),
        eb.and([
          eb('packs.status', '=', 'uploading'),
          eb.or([eb('packs.snapshot_id', 'is', null), eb('snapshots.status', '<>', 'uploading')]),
          eb('packs.created_at', '<', abandonedAfter),
        ]),
      ]),
    )
    .orderBy('packs.created_at');
}

/** A live blob of a pack, where the index says it lies. */
export interface LiveBlob {
  packId: string;
  objectKey: string;
  chunkId: Buffer;
  offset: number;
  length: number;
  rawLength: number;
}

/**
 * The live blobs of these stored packs, not marked bad, in pack and offset order: what repacking them
 * copies. A chunk that turns live after this is read keeps its pack: markPacksDeleting decides again.
 */
export async function liveBlobsOf(db: Db, destinationId: string, packIds: string[]): Promise<LiveBlob[]> {
  if (!packIds.length) return [];
  return db
    .selectFrom('pack_chunks')
    .innerJoin('packs', 'packs.id', 'pack_chunks.pack_id')
    .select([
      'pack_chunks.pack_id as packId',
      'packs.object_key as objectKey',
      'pack_chunks.chunk_id as chunkId',
      'pack_chunks.offset',
      'pack_chunks.length',
      'pack_chunks.raw_length as rawLength',
    ])
    .where('packs.destination_id', '=', destinationId)
    .where('packs.status', '=', 'stored')
    .where('pack_chunks.pack_id', 'in', packIds)
    .where('pack_chunks.bad_at', 'is', null)
    .where('pack_chunks.chunk_id', 'in', liveChunks(db, destinationId))
    .orderBy('pack_chunks.pack_id')
    .orderBy('pack_chunks.offset')
    .execute();
}

/**
 * First step of deleting packs: marks `deleting` those of packIds that may go, and answers them (with
 * any already deleting, to retry). Decided again here, with backups' claims locked out: a stored pack
 * may go only if each live chunk it holds has a verified copy, not marked bad, in a stored pack not
 * among packIds (so a repacked pack goes once its copy is stored), an upload only if abandoned. An
 * unverified copy will not do: it may be another server's garbage under the chunk's id, which
 * counts as held only for that server's environments (docs/SECURITY.md). From then on nothing
 * counts its chunks as held; the caller deletes the objects, then deletePackRows. A crash in between
 * leaves them deleting, and the next collection finds them in packsToDelete.
 */
export async function markPacksDeleting(db: Db, destinationId: string, packIds: string[]): Promise<string[]> {
  if (!packIds.length) return [];
  return db.transaction().execute(async (trx) => {
    await lockDestinationIndex(trx, destinationId, 'exclusive');
    // Claims of backups that ended hold nothing: dropped while nothing can add one.
    await trx
      .deleteFrom('chunk_claims')
      .where('snapshot_id', 'in', (eb) =>
        eb
          .selectFrom('snapshots')
          .select('id')
          .where('destination_id', '=', destinationId)
          .where('status', '<>', 'uploading'),
      )
      .execute();
    const live = liveChunks(trx, destinationId);
    const blocked = await trx
      .selectFrom('pack_chunks as entry')
      .select('entry.pack_id')
      .distinct()
      .where('entry.pack_id', 'in', packIds)
      .where('entry.chunk_id', 'in', live)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('pack_chunks as copy')
              .innerJoin('packs', 'packs.id', 'copy.pack_id')
              .select('copy.pack_id')
              .whereRef('copy.chunk_id', '=', 'entry.chunk_id')
              .where('packs.destination_id', '=', destinationId)
              .where('packs.status', '=', 'stored')
              .where('packs.id', 'not in', packIds)
              .where('copy.bad_at', 'is', null)
              .where('copy.verified_at', 'is not', null),
          ),
        ),
      )
      .execute();
    const keep = new Set(blocked.map((r) => r.pack_id));
    const abandoned = new Set((await goneOrAbandoned(trx, destinationId).execute()).map((p) => p.id));
    const candidates = await trx
      .selectFrom('packs')
      .select(['id', 'status'])
      .where('destination_id', '=', destinationId)
      .where('id', 'in', packIds)
      .execute();
    const going = candidates
      .filter((p) => (p.status === 'stored' ? !keep.has(p.id) : abandoned.has(p.id)))
      .map((p) => p.id);
    for (const batch of batches(going))
      await trx
        .updateTable('packs')
        // The clock now, with the index locked (not the transaction's start, which may be well before):
        // a restore begun after it locates only once this commits, and is not told of the pack.
        .set({ status: 'deleting', deleting_since: sql`coalesce(deleting_since, clock_timestamp())` })
        .where('id', 'in', batch)
        .execute();
    return going;
  });
}

/**
 * Of these packs marked deleting, those whose objects may go now: no restore or verification of a
 * snapshot on the destination, still running, began before the pack was marked. One that began
 * before may have been told its chunks lie there (and may still fetch it: restore-chunks.data.ts);
 * one that began after was told of other copies only. So the pack waits for the readers it may
 * have, a later collection deleting it, and never for the ones that come after.
 */
export async function packsFreeOfReaders(
  db: Db,
  destinationId: string,
  packIds: string[],
): Promise<string[]> {
  const out: string[] = [];
  for (const batch of batches(packIds)) {
    const rows = await db
      .selectFrom('packs')
      .select('packs.id')
      .where('packs.id', 'in', batch)
      .where('packs.status', '=', 'deleting')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('operations as o')
              .innerJoin(
                (eb) =>
                  eb
                    .selectFrom('restores')
                    .select(['operation_id', 'snapshot_id'])
                    .unionAll(eb.selectFrom('verifications').select(['operation_id', 'snapshot_id']))
                    .as('reads'),
                (join) => join.onRef('reads.operation_id', '=', 'o.id'),
              )
              .innerJoin('snapshots as s', 's.id', 'reads.snapshot_id')
              .select('o.id')
              .where('o.status', 'in', activeStatuses)
              .where('s.destination_id', '=', destinationId)
              .whereRef('o.created_at', '<=', 'packs.deleting_since'),
          ),
        ),
      )
      .execute();
    out.push(...rows.map((r) => r.id));
  }
  return out;
}

/** Last step: the rows of packs whose objects are gone (only packs marked deleting). */
export async function deletePackRows(db: Db, packIds: string[]): Promise<void> {
  for (const batch of batches(packIds))
    await db.deleteFrom('packs').where('id', 'in', batch).where('status', '=', 'deleting').execute();
}
