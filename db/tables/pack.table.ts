import type { ColumnType, Generated, Selectable } from 'kysely';

/**
 * A pack object of format 2 on a destination. uploading: minted, its PUT presigned, not yet checked;
 * stored: checked, its chunks count as held; deleting: chosen by garbage collection, its object going
 * (never counted as held again; the row goes once the object is gone).
 */
export interface PackTable {
  id: string;
  team_id: string;
  destination_id: string;
  /** The environment whose backup wrote it (null for a repack by the control plane, or once deleted). */
  environment_id: string | null;
  /**
   * The server whose agent wrote it (null for a repack, a server since deleted, or a pack older than
   * the column): its copies count as held for that server's environments (db/chunk-index.data.ts).
   */
  server_id: string | null;
  /** The backup that wrote it, while it runs: a pack it left uploading is garbage once it ends. */
  snapshot_id: string | null;
  object_key: string;
  size_bytes: ColumnType<string | null, number | null, number | null>;
  status: 'uploading' | 'stored' | 'deleting';
  created_at: Generated<Date>;
  stored_at: Date | null;
  /** When garbage collection marked it deleting (null before, or if marked before the column). */
  deleting_since: Date | null;
}
export type Pack = Selectable<PackTable>;

/** One blob of a stored pack, as its index says (docs/FORMAT.md); a chunk may sit in several packs. */
export interface PackChunkTable {
  pack_id: string;
  chunk_id: Buffer;
  offset: number;
  length: number;
  raw_length: number;
  /** When the control plane opened this blob and found its plaintext hashes to chunk_id. */
  verified_at: Date | null;
  /** When a verification or restore found this blob missing or corrupt: never counted as held again. */
  bad_at: Date | null;
}
