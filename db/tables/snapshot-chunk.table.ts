/** A chunk a finished format-2 snapshot references, as its agent reported at completion. */
export interface SnapshotChunkTable {
  snapshot_id: string;
  chunk_id: Buffer;
}

/**
 * A chunk a backup in flight relies on without having reported it yet: one the index said its
 * destination holds, or one it uploaded. Live for garbage collection while the snapshot is uploading.
 */
export interface ChunkClaimTable {
  snapshot_id: string;
  chunk_id: Buffer;
}
