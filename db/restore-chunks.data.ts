import { sql } from 'kysely';
import { batches, lockDestinationIndex } from './chunk-index.data.ts';
import type { Db } from './database.ts';

// What restoring a format-2 snapshot reads of the chunk index: only chunks that snapshot references,
// only copies in stored packs of its destination not marked bad. An agent naming any other chunk or
// pack learns nothing of it.

export interface ChunkPlace {
  chunkId: Buffer;
  packId: string;
  offset: number;
  length: number;
  rawLength: number;
}

/** One copy per chunk of the snapshot's: a verified one first, then the oldest pack (a stable choice). */
function places(db: Db, snapshot: { id: string; destination_id: string }) {
  return db
    .selectFrom('snapshot_chunks as s')
    .innerJoin('pack_chunks as c', 'c.chunk_id', 's.chunk_id')
    .innerJoin('packs as p', 'p.id', 'c.pack_id')
    .distinctOn('s.chunk_id')
    .select(['s.chunk_id', 'p.id as pack_id', 'c.offset', 'c.length', 'c.raw_length'])
    .where('s.snapshot_id', '=', snapshot.id)
    .where('p.destination_id', '=', snapshot.destination_id)
    .where('p.status', '=', 'stored')
    .where('c.bad_at', 'is', null)
    .orderBy('s.chunk_id')
    .orderBy(sql`c.verified_at is null`)
    .orderBy('p.stored_at');
}

/** Where these chunks of the snapshot lie; chunks it does not reference, or with no good copy, are absent. */
export async function snapshotChunkPlaces(
  db: Db,
  snapshot: { id: string; destination_id: string },
  ids: Buffer[],
): Promise<ChunkPlace[]> {
  const out: ChunkPlace[] = [];
  for (const batch of batches(ids)) {
    // Beside garbage collection's marking (chunk-gc.data.ts markPacksDeleting), never during it: a
    // pack is either named before it is marked (and its object held for this reader) or not at all.
    const rows = await db.transaction().execute(async (trx) => {
      await lockDestinationIndex(trx, snapshot.destination_id, 'shared');
      return places(trx, snapshot).where('s.chunk_id', 'in', batch).execute();
    });
    for (const r of rows)
      out.push({
        chunkId: r.chunk_id,
        packId: r.pack_id,
        offset: r.offset,
        length: r.length,
        rawLength: r.raw_length,
      });
  }
  return out;
}

/** The blob bytes a restore of the snapshot fetches, at least: one copy of each of its chunks. */
export async function snapshotBlobBytes(
  db: Db,
  snapshot: { id: string; destination_id: string },
): Promise<number> {
  const { bytes } = await db
    .selectFrom(places(db, snapshot).as('l'))
    .select(sql<string>`coalesce(sum(l.length), 0)`.as('bytes'))
    .executeTakeFirstOrThrow();
  return Number(bytes);
}

/**
 * Of these packs, those of the snapshot's destination holding a good copy of one of its chunks:
 * stored, or marked deleting since the reader was told of them (garbage collection leaves their
 * objects until it ends: chunk-gc.data.ts packsFreeOfReaders).
 */
export async function snapshotPacks(
  db: Db,
  snapshot: { id: string; destination_id: string },
  packIds: string[],
): Promise<{ id: string; object_key: string }[]> {
  return db
    .selectFrom('packs as p')
    .select(['p.id', 'p.object_key'])
    .where('p.id', 'in', packIds)
    .where('p.destination_id', '=', snapshot.destination_id)
    .where('p.status', 'in', ['stored', 'deleting'])
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('pack_chunks as c')
          .innerJoin('snapshot_chunks as s', 's.chunk_id', 'c.chunk_id')
          .select('c.chunk_id')
          .whereRef('c.pack_id', '=', 'p.id')
          .where('s.snapshot_id', '=', snapshot.id)
          .where('c.bad_at', 'is', null),
      ),
    )
    .execute();
}
