import type { Db } from './database.ts';

// What a verification of a format-2 snapshot changes in the chunk index: copies an agent reports
// damaged are looked up here, checked by the control plane, then marked bad. Only copies of chunks
// that snapshot references, in stored packs of its destination: an agent naming any other learns
// nothing and changes nothing.

export interface ChunkCopy {
  chunkId: Buffer;
  packId: string;
}

export interface StoredCopy extends ChunkCopy {
  objectKey: string;
  offset: number;
  length: number;
  rawLength: number;
}

/** Of these copies, those of the snapshot's chunks in stored packs of its destination, not yet marked bad. */
export async function snapshotCopies(
  db: Db,
  snapshot: { id: string; destination_id: string },
  copies: ChunkCopy[],
): Promise<StoredCopy[]> {
  if (copies.length === 0) return [];
  const rows = await db
    .selectFrom('pack_chunks as c')
    .innerJoin('packs as p', 'p.id', 'c.pack_id')
    .innerJoin('snapshot_chunks as s', 's.chunk_id', 'c.chunk_id')
    .select(['c.chunk_id', 'c.pack_id', 'p.object_key', 'c.offset', 'c.length', 'c.raw_length'])
    .where('s.snapshot_id', '=', snapshot.id)
    .where('p.destination_id', '=', snapshot.destination_id)
    .where('p.status', '=', 'stored')
    .where('c.bad_at', 'is', null)
    .where((eb) =>
      eb.or(copies.map((k) => eb.and([eb('c.chunk_id', '=', k.chunkId), eb('c.pack_id', '=', k.packId)]))),
    )
    .execute();
  return rows.map((r) => ({
    chunkId: r.chunk_id,
    packId: r.pack_id,
    objectKey: r.object_key,
    offset: r.offset,
    length: r.length,
    rawLength: r.raw_length,
  }));
}

/**
 * Marks these copies bad (and no other copy of the same chunks): they never count as held again, so
 * the next backup needing one uploads it anew, and a restore reads another copy if there is one.
 */
export async function markCopiesBad(db: Db, copies: ChunkCopy[]): Promise<number> {
  if (copies.length === 0) return 0;
  const result = await db
    .updateTable('pack_chunks')
    .set({ bad_at: new Date() })
    .where('bad_at', 'is', null)
    .where((eb) =>
      eb.or(copies.map((k) => eb.and([eb('chunk_id', '=', k.chunkId), eb('pack_id', '=', k.packId)]))),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
