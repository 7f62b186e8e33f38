import { DomainError, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { VolumeTotal } from '../format/manifest.ts';
import type { Db } from './database.ts';
import { jsonb } from './jsonb.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import type { Snapshot, VolumeMethods } from './tables/snapshot.table.ts';

export interface NewSnapshot {
  teamId: string;
  environmentId: string;
  destinationId: string;
  sourceServerId: string;
  operationId: string;
  keyId: string;
  objectKeys: (snapshotId: string) => { data: string; manifest: string };
  /** 1 unless said: docs/FORMAT.md. A format-2 snapshot has no data object (its data key names none). */
  formatVersion?: 1 | 2;
}

export async function createSnapshot(db: Db, s: NewSnapshot): Promise<Snapshot> {
  const id = newId('snap');
  const keys = s.objectKeys(id);
  return db
    .insertInto('snapshots')
    .values({
      id,
      team_id: s.teamId,
      environment_id: s.environmentId,
      destination_id: s.destinationId,
      source_server_id: s.sourceServerId,
      operation_id: s.operationId,
      status: 'uploading',
      format_version: s.formatVersion ?? 1,
      data_key: keys.data,
      manifest_key: keys.manifest,
      upload_id: null,
      key_id: s.keyId,
      size_bytes: null,
      tar_bytes: null,
      entries: null,
      data_sha256: null,
      manifest_sha256: null,
      frozen_ms: null,
      capture_ms: null,
      error: null,
      completed_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getSnapshotById(db: Db, id: string): Promise<Snapshot> {
  const snapshot = await db.selectFrom('snapshots').selectAll().where('id', '=', id).executeTakeFirst();
  if (!snapshot) throw notFound('snapshot', id);
  return snapshot;
}

/** A complete snapshot of the team's: one still uploading, failed or of another team is not found. */
export async function getSnapshot(db: Db, teamId: string, id: string): Promise<Snapshot> {
  const snapshot = await db
    .selectFrom('snapshots')
    .selectAll()
    .where('id', '=', id)
    .where('team_id', '=', teamId)
    .where('status', '=', 'complete')
    .executeTakeFirst();
  if (!snapshot) throw notFound('snapshot', id);
  return snapshot;
}

/** The snapshot record a backup operation made, whatever its state (its retry finds it). */
export function snapshotRecordOf(db: Db, operationId: string): Promise<Snapshot | undefined> {
  return db.selectFrom('snapshots').selectAll().where('operation_id', '=', operationId).executeTakeFirst();
}

/** The complete snapshot a backup operation made, if it made one. */
export function snapshotOfOperation(db: Db, operationId: string): Promise<Snapshot | undefined> {
  return db
    .selectFrom('snapshots')
    .selectAll()
    .where('operation_id', '=', operationId)
    .where('status', '=', 'complete')
    .executeTakeFirst();
}

/** For an agent: a snapshot its own server is taking right now, and nothing else. */
export async function uploadingSnapshotForServer(
  db: Db,
  serverId: string,
  id: string,
): Promise<Snapshot | undefined> {
  return db
    .selectFrom('snapshots')
    .selectAll()
    .where('id', '=', id)
    .where('source_server_id', '=', serverId)
    .where('status', '=', 'uploading')
    .executeTakeFirst();
}

export async function setUploadId(db: Db, id: string, uploadId: string): Promise<void> {
  await db.updateTable('snapshots').set({ upload_id: uploadId }).where('id', '=', id).execute();
}

export interface CompletedSnapshot {
  sizeBytes: number;
  tarBytes: number;
  entries: number;
  /** Of the data object: format 2 has none. */
  dataSha256: string | null;
  manifestSha256: string;
  frozenMs: number;
  captureMs: number;
  /** Absent from agents that predate it, and from a capture such an agent spooled before an upgrade. */
  volumes?: VolumeTotal[];
  /** Absent likewise, from agents before file-system snapshots. */
  methods?: VolumeMethods;
}

/** Lists an upload as a snapshot; one already complete, or failed meanwhile, is left as it is. */
export async function markComplete(db: Db, id: string, c: CompletedSnapshot): Promise<void> {
  await db
    .updateTable('snapshots')
    .set({
      status: 'complete',
      size_bytes: c.sizeBytes,
      tar_bytes: c.tarBytes,
      entries: c.entries,
      data_sha256: c.dataSha256,
      manifest_sha256: c.manifestSha256,
      frozen_ms: c.frozenMs,
      capture_ms: c.captureMs,
      volumes: jsonb(c.volumes ?? null),
      volume_methods: jsonb(c.methods ?? null),
      completed_at: new Date(),
    })
    .where('id', '=', id)
    .where('status', '=', 'uploading')
    .execute();
}

export async function markFailed(db: Db, id: string, error: string): Promise<void> {
  await db
    .updateTable('snapshots')
    .set({ status: 'failed', error })
    .where('id', '=', id)
    .where('status', '=', 'uploading')
    .execute();
}

/** A page of the environment's complete snapshots, newest first. */
export function snapshotsPage(
  db: Db,
  teamId: string,
  environmentId: string,
  page: PageRequest,
): Promise<Page<Snapshot>> {
  return keysetPage(
    db
      .selectFrom('snapshots')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('environment_id', '=', environmentId)
      .where('status', '=', 'complete'),
    { at: 'created_at', id: 'id' },
    page,
  );
}

/**
 * What a restore uses when none is named: the newest complete snapshot that has not failed a
 * verification (one never verified counts as good: most are, and it is the newest state there is).
 */
export async function defaultRestorePoint(db: Db, teamId: string, environmentId: string): Promise<Snapshot> {
  const snapshot = await db
    .selectFrom('snapshots')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('environment_id', '=', environmentId)
    .where('status', '=', 'complete')
    .where((eb) => eb.or([eb('verification', 'is', null), eb('verification', '=', 'ok')]))
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!snapshot)
    throw new DomainError(
      'invalid',
      'no_restore_point',
      `snapshotId: environment ${environmentId} has no snapshot that has not failed verification; name one`,
      'snapshotId',
    );
  return snapshot;
}

/** Pins or unpins a complete snapshot of the team (a pinned one is never pruned by a rule). */
export function setPinned(
  db: Db,
  teamId: string,
  id: string,
  pinned: boolean,
): Promise<Snapshot | undefined> {
  return db
    .updateTable('snapshots')
    .set({ pinned })
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .where('status', '=', 'complete')
    .returningAll()
    .executeTakeFirst();
}

/** The upload ids of snapshots being uploaded now: an upload none of them owns is debris. */
export async function openUploadIds(db: Db): Promise<Set<string>> {
  const rows = await db
    .selectFrom('snapshots')
    .select('upload_id')
    .where('status', '=', 'uploading')
    .execute();
  return new Set(rows.flatMap((r) => (r.upload_id ? [r.upload_id] : [])));
}

/** A verification's verdict on the snapshot ("last verified"). */
export async function recordVerified(
  db: Db,
  id: string,
  outcome: { result: 'ok' | 'missing' | 'failed'; error?: string },
): Promise<void> {
  await db
    .updateTable('snapshots')
    .set({
      verified_at: new Date(),
      verification: outcome.result,
      verification_error: outcome.result === 'ok' ? null : (outcome.error ?? null),
    })
    .where('id', '=', id)
    .execute();
}

/** The distinct team and destination pairs of the format-2 snapshots among these. */
export async function packPoolsOf(
  db: Db,
  snapshotIds: string[],
): Promise<{ teamId: string; destinationId: string }[]> {
  if (!snapshotIds.length) return [];
  const rows = await db
    .selectFrom('snapshots')
    .select(['team_id', 'destination_id'])
    .distinct()
    .where('id', 'in', snapshotIds)
    .where('format_version', '=', 2)
    .execute();
  return rows.map((r) => ({ teamId: r.team_id, destinationId: r.destination_id }));
}
