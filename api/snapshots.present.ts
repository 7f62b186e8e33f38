import { z } from '@hono/zod-openapi';
import { snapshotMethods } from '../common/host-tasks.ts';
import type { Snapshot } from '../db/tables/snapshot.table.ts';

export const snapshotSchema = z
  .object({
    id: z.string(),
    environmentId: z.string(),
    destinationId: z.string(),
    sourceServerId: z.string(),
    createdAt: z.string().openapi({ description: 'The point in time the snapshot holds (services paused)' }),
    completedAt: z.string().nullable(),
    formatVersion: z.number().int().openapi({
      description:
        'docs/FORMAT.md: 1, a data object beside the manifest; 2, deduplicated: a manifest whose files are chunks in the team’s packs, shared with other snapshots',
    }),
    sizeBytes: z.number().openapi({
      description:
        'What the snapshot stored, compressed and encrypted: for format 2, only what was new to the destination, besides its manifest',
    }),
    entries: z.number(),
    keyFingerprint: z.string(),
    frozenMs: z.number().openapi({
      description:
        'How long the services were held still (paused, or stopped): with file-system snapshots, only while they were taken',
    }),
    volumeMethods: z
      .record(z.string(), z.enum(snapshotMethods))
      .nullable()
      .openapi({
        description:
          'How each volume was taken at the point in time: a file-system snapshot made inside the hold (`btrfs-subvolume`, `reflink`), after which the services went on at once, or `read` while they were held. Null for snapshots of agents before file-system snapshots',
        example: { pgdata: 'btrfs-subvolume', uploads: 'read' },
      }),
    captureMs: z.number(),
    objects: z.object({
      data: z.string().nullable().openapi({ description: 'Null for format 2, which has no data object' }),
      manifest: z.string(),
    }),
    pinned: z.boolean().openapi({ description: 'Never pruned by a retention rule' }),
    lastVerified: z
      .object({
        at: z.string(),
        result: z.enum(['ok', 'failed', 'missing']),
        error: z.string().nullable(),
      })
      .nullable()
      .openapi({
        description: 'The last verification; a snapshot that failed is never the default restore point',
      }),
  })
  .openapi('Snapshot');

export function presentSnapshot(s: Snapshot): z.infer<typeof snapshotSchema> {
  return {
    id: s.id,
    environmentId: s.environment_id,
    destinationId: s.destination_id,
    sourceServerId: s.source_server_id,
    createdAt: s.created_at.toISOString(),
    completedAt: s.completed_at?.toISOString() ?? null,
    formatVersion: s.format_version,
    sizeBytes: Number(s.size_bytes ?? 0),
    entries: s.entries ?? 0,
    keyFingerprint: s.key_id.match(/.{4}/g)!.join('-'),
    frozenMs: s.frozen_ms ?? 0,
    volumeMethods: s.volume_methods,
    captureMs: s.capture_ms ?? 0,
    objects: { data: s.format_version === 1 ? s.data_key : null, manifest: s.manifest_key },
    pinned: s.pinned,
    lastVerified:
      s.verified_at && s.verification
        ? { at: s.verified_at.toISOString(), result: s.verification, error: s.verification_error }
        : null,
  };
}

/** One snapshot as GET /snapshots/{id} shows it: what it holds, volume by volume. */
export const snapshotDetailSchema = snapshotSchema
  .extend({
    tarBytes: z.number().openapi({ description: 'The archive before compression and encryption' }),
    volumes: z
      .array(
        z.object({
          name: z.string(),
          entries: z.number().openapi({ description: 'Files, folders and links' }),
          bytes: z.number().openapi({ description: 'The sizes of its files, before compression' }),
        }),
      )
      .nullable()
      .openapi({
        description:
          'As the snapshot’s manifest lists them, reported by the agent that took it; null if that agent predates it',
      }),
  })
  .openapi('SnapshotDetail');

export function presentSnapshotDetail(s: Snapshot): z.infer<typeof snapshotDetailSchema> {
  return { ...presentSnapshot(s), tarBytes: Number(s.tar_bytes ?? 0), volumes: s.volumes };
}
