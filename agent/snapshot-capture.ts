import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/container.ts';
import { sealManifest } from '../format/manifest-object.ts';
import { buildManifest } from '../format/manifest.ts';
import { keyIdOf } from '../format/team-key.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { PartUploader, PartUploadError, type UploadedPart } from './part-uploader.ts';
import type { Runtime } from './runtime.ts';

export interface CaptureInput {
  snapshotId: string;
  environmentId: string;
  /** The team's public key (not secret): enough to seal a snapshot, never to open one. */
  teamPublicKey: string;
}

export interface CaptureResult {
  parts: UploadedPart[];
  sizeBytes: number;
  dataSha256: string;
  manifestSha256: string;
  tarBytes: number;
  entries: number;
  frozenMs: number;
  captureMs: number;
  /** Epoch ms at which the first part left for the storage. */
  firstByteAt: number;
}

export interface CaptureProgress {
  bytesUploaded: number;
  partsUploaded: number;
}

// 16 MiB parts: 10,000 parts (S3's limit) then cover 160 GB of compressed snapshot, and two in
// flight keep the agent's memory near 50 MiB.
const partSize = 16 * 1024 * 1024;

export interface CaptureDeps {
  runtime: Runtime;
  controlPlane: Pick<ControlPlaneClient, 'partUrls' | 'manifestUrl'>;
  serverId: string;
}

/**
 * One point in time of every volume of the environment: services paused (SIGSTOP) while tar reads,
 * resumed the moment it is done, and always resumed, whatever fails. The snapshot streams straight
 * into the bucket through presigned URLs.
 */
export async function captureSnapshot(
  { runtime, controlPlane, serverId }: CaptureDeps,
  spec: EnvironmentSpec,
  input: CaptureInput,
  onProgress: (p: CaptureProgress) => void,
): Promise<CaptureResult> {
  const started = Date.now();
  const publicKey = Buffer.from(input.teamPublicKey, 'hex');
  const dataKey = newDataKey();
  const volumes = [...new Set(spec.services.flatMap((s) => s.volumes))].sort();
  for (const volume of volumes)
    await mkdir(runtime.volumePath(spec.environmentId, volume), { recursive: true });

  const uploader = new PartUploader({
    partSize,
    partUrls: (numbers) => controlPlane.partUrls(input.snapshotId, numbers),
    onPart: (_part, bytesDone) =>
      onProgress({ bytesUploaded: bytesDone, partsUploaded: uploader.parts.length }),
  });

  let frozenAt = 0;
  let frozenMs = 0;
  const thaw = async () => {
    if (frozenAt && !frozenMs) {
      await runtime.thaw(spec.environmentId);
      frozenMs = Date.now() - frozenAt;
    }
  };
  let archive: Awaited<ReturnType<typeof writeArchive>>;
  try {
    await runtime.freeze(spec.environmentId);
    frozenAt = Date.now();
    archive = await writeArchive({
      root: runtime.volumesRoot(spec.environmentId),
      volumes,
      publicKey,
      dataKey,
      sink: uploader,
      onSourceRead: () => void thaw(),
    });
  } finally {
    await thaw();
  }

  const manifest = buildManifest(
    {
      snapshotId: input.snapshotId,
      teamId: spec.teamId,
      environmentId: spec.environmentId,
      environmentName: spec.name,
      sourceServerId: serverId,
      createdAt: new Date(frozenAt).toISOString(),
      keyId: keyIdOf(publicKey).toString('hex'),
      services: spec.services.map((s) => ({ name: s.name, volumes: s.volumes })),
    },
    archive,
  );
  const sealed = await sealManifest(manifest, publicKey, dataKey);
  dataKey.fill(0);
  const res = await fetch(await controlPlane.manifestUrl(input.snapshotId), { method: 'PUT', body: sealed });
  if (!res.ok) throw new PartUploadError(`the storage refused the manifest: HTTP ${res.status}`, res.status);

  return {
    parts: uploader.parts,
    sizeBytes: uploader.size,
    dataSha256: uploader.digest(),
    manifestSha256: createHash('sha256').update(sealed).digest('hex'),
    tarBytes: archive.tarBytes,
    entries: archive.entries.length,
    frozenMs,
    captureMs: Date.now() - started,
    firstByteAt: uploader.firstSentAt ?? Date.now(),
  };
}
