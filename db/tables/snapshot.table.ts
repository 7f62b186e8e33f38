import type { ColumnType, Generated, Selectable } from 'kysely';

// bigint columns come back from postgres.js as strings; they are numbers here after conversion.
type BigCount = ColumnType<string | null, number | null, number | null>;

export interface SnapshotTable {
  id: string;
  team_id: string;
  environment_id: string;
  destination_id: string;
  source_server_id: string;
  operation_id: string;
  status: 'uploading' | 'complete' | 'failed';
  data_key: string;
  manifest_key: string;
  upload_id: string | null;
  key_id: string;
  size_bytes: BigCount;
  tar_bytes: BigCount;
  entries: number | null;
  data_sha256: string | null;
  manifest_sha256: string | null;
  frozen_ms: number | null;
  capture_ms: number | null;
  error: string | null;
  created_at: Generated<Date>;
  completed_at: Date | null;
  pinned: Generated<boolean>;
}
export type Snapshot = Selectable<SnapshotTable>;
