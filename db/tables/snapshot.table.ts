import type { ColumnType, Generated, RawBuilder, Selectable } from 'kysely';
import type { SnapshotMethod } from '../../common/host-tasks.ts';
import type { VolumeTotal } from '../../format/manifest.ts';

/** Per volume name, how the agent took it at the snapshot's point in time. */
export type VolumeMethods = Record<string, SnapshotMethod>;

// bigint columns come back from postgres.js as strings; they are numbers here after conversion.
type BigCount = ColumnType<string | null, number | null, number | null>;

export interface SnapshotTable {
  id: string;
  team_id: string;
  environment_id: string;
  destination_id: string;
  source_server_id: string;
  operation_id: string;
  /** deleting: chosen by a prune, its objects going (never offered again); deleted: its objects are gone. */
  status: 'uploading' | 'complete' | 'failed' | 'deleting' | 'deleted';
  /** docs/FORMAT.md: 1, a data object and its manifest; 2, a manifest of chunks in the team's packs. */
  format_version: ColumnType<1 | 2, 1 | 2 | undefined, never>;
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
  /** The last verification: when, and how it went ('ok', 'failed': a check failed, 'missing': an object is gone). */
  verified_at: Date | null;
  verification: 'ok' | 'failed' | 'missing' | null;
  verification_error: string | null;
  deleted_at: Date | null;
  /** The manifest's per-volume totals, as the agent reported them; null if it reported none (older agents). */
  volumes: ColumnType<VolumeTotal[] | null, never, RawBuilder<VolumeTotal[] | null>>;
  /** How each volume was taken (a file-system snapshot, or read under the hold); null from older agents. */
  volume_methods: ColumnType<VolumeMethods | null, never, RawBuilder<VolumeMethods | null>>;
}
export type Snapshot = Selectable<SnapshotTable>;
