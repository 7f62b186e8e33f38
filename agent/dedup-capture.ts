import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import type { SnapshotMethod } from '../common/host-tasks.ts';
import { transferred, type Logger } from '../common/log.ts';
import { newDataKey } from '../format/data-key.ts';
import { keyIdOf } from '../format/team-key.ts';
import { manifestChunking, sealManifestV2, type ManifestV2 } from '../format/v2/manifest-v2.ts';
import { writeTree, type TreeWritten } from '../format/v2/tree-writer.ts';
import { confined } from './confined-path.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { loadFilesCache, saveFilesCache } from './files-cache.ts';
import { readHeld } from './held-read.ts';
import { PartUploadError, putFile } from './http-upload.ts';
import { PackUploader } from './pack-uploader.ts';
import type { RateLimit } from './rate-limit.ts';
import type { Runtime } from './runtime.ts';
import { isoTime } from '../common/iso-time.ts';

export interface DedupCaptureInput {
  snapshotId: string;
  environmentId: string;
  /** The team's public key (not secret): enough to seal a snapshot, never to open one. */
  teamPublicKey: string;
}

export interface DedupCaptureDeps {
  runtime: Runtime;
  controlPlane: Pick<
    ControlPlaneClient,
    'dedupKey' | 'chunksNeeded' | 'startPack' | 'packStored' | 'chunksReferenced' | 'manifestUrl'
  >;
  serverId: string;
  uploadLimit?: RateLimit;
  log: Logger;
}

export interface DedupCaptureProgress {
  bytesRead: number;
  bytesUploaded: number;
  packsUploaded: number;
  /** What is to be sent in all, known once the volumes are read (null until then). */
  bytesExpected: number | null;
}

export interface DedupCaptured {
  manifestSha256: string;
  entries: number;
  chunks: number;
  /** The files' bytes, as the snapshot holds them. */
  bytes: number;
  frozenMs: number;
  methods: Record<string, SnapshotMethod>;
  volumes: ManifestV2['volumes'];
  figures: TreeWritten['figures'];
  captureMs: number;
}

/**
 * A format-2 snapshot of the environment in its destination: the volumes read under the same hold as
 * version 1 (held-read.ts), only the chunks the destination lacks packed and sent, straight from the
 * agent's disk to URLs the control plane presigned, then the manifest. Files unchanged since the
 * agent's last capture of the environment are not read (files-cache.ts). A retry after the agent died
 * sends again only what no pack reported stored holds.
 */
export async function captureDedupSnapshot(
  { runtime, controlPlane, serverId, uploadLimit, log }: DedupCaptureDeps,
  spec: EnvironmentSpec,
  input: DedupCaptureInput,
  onProgress: (p: DedupCaptureProgress) => void,
  signal?: AbortSignal,
): Promise<DedupCaptured> {
  const started = Date.now();
  const publicKey = Buffer.from(input.teamPublicKey, 'hex');
  const dedupKey = await controlPlane.dedupKey();
  const spool = confined(runtime.capturesRoot(), 'packs', spec.environmentId);
  const progress: DedupCaptureProgress = {
    bytesRead: 0,
    bytesUploaded: 0,
    packsUploaded: 0,
    bytesExpected: null,
  };
  const uploader = new PackUploader({
    api: controlPlane,
    snapshotId: input.snapshotId,
    dir: spool,
    limit: uploadLimit,
    signal,
    onStored: (bytes, packs) => {
      progress.bytesUploaded = bytes;
      progress.packsUploaded = packs;
      onProgress(progress);
    },
  });
  await uploader.reset();
  const previous = await loadFilesCache(runtime.capturesRoot(), spec.environmentId);

  let captured;
  try {
    captured = await readHeld(runtime, spec, input.snapshotId, log, ({ volumes, rootOf, release }) =>
      writeTree({
        root: rootOf,
        volumes,
        dedupKey,
        publicKey,
        store: uploader,
        previous,
        onSourceRead: release,
        onProgress: (bytesRead) => {
          progress.bytesRead = bytesRead;
          onProgress(progress);
        },
      }),
    );
  } catch (err) {
    await uploader.halt();
    throw err;
  }
  const tree = captured.result;
  // Every pack is on the agent's disk now: what is left to send is known, and so the time it takes.
  progress.bytesExpected = tree.figures.packedBytes;
  onProgress(progress);
  await uploader.drain();
  log.info(
    {
      volumes: tree.volumes,
      entries: tree.entries.length,
      chunks: tree.chunkIds.length,
      ...tree.figures,
      frozenMs: captured.heldMs,
      methods: captured.methods,
    },
    'captured',
  );

  const manifest: ManifestV2 = {
    format: 'strackt-snapshot',
    formatVersion: 2,
    snapshotId: input.snapshotId,
    teamId: spec.teamId,
    environmentId: spec.environmentId,
    environmentName: spec.name,
    sourceServerId: serverId,
    createdAt: isoTime(captured.since),
    keyId: keyIdOf(publicKey).toString('hex'),
    services: spec.services.map((s) => ({ name: s.name, volumes: s.volumes })),
    volumes: tree.volumes,
    chunking: manifestChunking,
    entries: tree.entries,
  };
  // Referenced before the manifest is stored: a listed snapshot never names a chunk collection may drop.
  // Asked first, and the manifest sealed while the control plane records them.
  const referenced = controlPlane.chunksReferenced(input.snapshotId, tree.chunkIds);
  referenced.catch(() => {}); // awaited below, once the manifest is sealed
  const dataKey = newDataKey();
  const sealed = await sealManifestV2(manifest, publicKey, dataKey).finally(() => dataKey.fill(0));
  await referenced;
  signal?.throwIfAborted();
  const manifestPath = confined(spool, 'manifest.json.strackt');
  await writeFile(manifestPath, sealed);
  const manifestSha256 = createHash('sha256').update(sealed).digest('hex');
  // The note written while the manifest goes: one of a backup that then fails costs nothing, its
  // chunks being confirmed held before the next capture relies on them.
  const noted = saveFilesCache(runtime.capturesRoot(), spec.environmentId, tree.files);
  noted.catch(() => {}); // awaited once the manifest is stored
  await putFile(await controlPlane.manifestUrl(input.snapshotId), manifestPath, sealed.length, {
    sha256: manifestSha256,
  }).catch((err: unknown) => {
    if (!(err instanceof PartUploadError)) throw err;
    throw new PartUploadError(`the manifest: ${err.message}`, err.status);
  });
  await noted;
  await uploader.reset();

  const bytes = tree.volumes.reduce((n, v) => n + v.bytes, 0);
  // The lines version 1 logs, in its order; bytes as the snapshot lists them: what this backup added.
  log.info(
    { ...transferred(tree.figures.packedBytes + sealed.length, started), packs: tree.figures.packs },
    'uploaded',
  );
  return {
    manifestSha256,
    entries: tree.entries.length,
    chunks: tree.chunkIds.length,
    bytes,
    frozenMs: captured.heldMs,
    methods: captured.methods,
    volumes: tree.volumes,
    figures: tree.figures,
    captureMs: Date.now() - started,
  };
}
