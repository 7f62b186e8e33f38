import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/container.ts';
import { sealManifest } from '../format/manifest-object.ts';
import { buildManifest } from '../format/manifest.ts';
import { keyIdOf } from '../format/team-key.ts';
import { createLogger } from '../common/log.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { PartUploader, PartUploadError, type UploadedPart } from './part-uploader.ts';
import { CaptureJournal } from './capture-journal.ts';
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
const log = createLogger('backup');

export interface CaptureDeps {
  runtime: Runtime;
  controlPlane: Pick<ControlPlaneClient, 'partUrls' | 'manifestUrl'>;
  serverId: string;
}

/** Post hooks of every service that has one; all run even if one fails, the first failure is thrown. */
export async function runPostHooks(runtime: Runtime, spec: EnvironmentSpec): Promise<void> {
  let first: unknown;
  for (const service of spec.services) {
    const hooks = service.backupHooks;
    if (!hooks?.post) continue;
    await runtime.runHook(spec, service, hooks.post, hooks.timeoutSeconds).catch((err: unknown) => {
      first ??= err;
    });
  }
  if (first) throw first;
}

/**
 * A restarted agent first pays what a backup it was running when it died still owed: services
 * stopped for the capture are started, post hooks run. (Paused ones are resumed by thawAll.)
 */
export async function settleInterruptedCaptures(
  runtime: Runtime,
  controlPlane: Pick<ControlPlaneClient, 'environmentSpec'>,
): Promise<void> {
  const journal = new CaptureJournal(runtime.capturesRoot());
  for (const debt of await journal.outstanding()) {
    try {
      const spec = await controlPlane.environmentSpec(debt.environmentId);
      if (debt.restart) await runtime.start(spec);
      if (debt.postHooks) await runPostHooks(runtime, spec);
      log.info('settled a backup interrupted by an agent restart', { ...debt });
    } catch (err) {
      log.error('could not settle an interrupted backup', err, { ...debt });
    }
    await journal.settle(debt.environmentId);
  }
}

/**
 * One point in time of every volume of the environment. Pre hooks run first; then, by the
 * environment's strategy, its services are paused (SIGSTOP, `freeze`) or stopped (`stop`) while tar
 * reads, and resumed or started the moment it is done; post hooks run last. Resuming, starting and
 * post hooks always happen, whatever fails, and a journal on disk makes a restarted agent do them if
 * this one dies. The snapshot streams straight into the bucket through presigned URLs.
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

  const journal = new CaptureJournal(runtime.capturesRoot());
  const debt = {
    environmentId: spec.environmentId,
    snapshotId: input.snapshotId,
    restart: false,
    postHooks: spec.services.some((s) => s.backupHooks?.post),
  };
  const strategy = spec.backupStrategy ?? 'freeze';
  let heldAt = 0;
  let heldMs = 0;
  let releasing: Promise<void> | undefined;
  const release = (): Promise<void> =>
    heldAt
      ? (releasing ??= (async () => {
          if (strategy === 'freeze') await runtime.thaw(spec.environmentId);
          if (strategy === 'stop' && debt.restart) {
            await runtime.start(spec);
            await journal.note({ ...debt, restart: false });
          }
          heldMs = strategy === 'none' ? 0 : Date.now() - heldAt;
        })())
      : Promise.resolve();

  let archive: Awaited<ReturnType<typeof writeArchive>> | undefined;
  let captureFailure: unknown;
  await journal.note(debt);
  try {
    for (const service of spec.services) {
      const hooks = service.backupHooks;
      if (hooks?.pre) await runtime.runHook(spec, service, hooks.pre, hooks.timeoutSeconds);
    }
    if (strategy === 'freeze') await runtime.freeze(spec.environmentId);
    if (strategy === 'stop') {
      debt.restart = (await runtime.status(spec.environmentId)).some((s) => s.running);
      await journal.note(debt);
      await runtime.stop(spec.environmentId);
    }
    heldAt = Date.now();
    archive = await writeArchive({
      root: runtime.volumesRoot(spec.environmentId),
      volumes,
      publicKey,
      dataKey,
      sink: uploader,
      onSourceRead: () => void release(),
    });
  } catch (err) {
    captureFailure = err;
  }
  await release();
  const postFailure = await runPostHooks(runtime, spec).then(
    () => undefined,
    (err: unknown) => err,
  );
  await journal.settle(spec.environmentId);
  // After a failed capture its own error is the one to report, not a post hook's.
  if (captureFailure || !archive) throw captureFailure;
  if (postFailure) throw postFailure;

  const manifest = buildManifest(
    {
      snapshotId: input.snapshotId,
      teamId: spec.teamId,
      environmentId: spec.environmentId,
      environmentName: spec.name,
      sourceServerId: serverId,
      createdAt: new Date(heldAt).toISOString(),
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
    frozenMs: heldMs,
    captureMs: Date.now() - started,
    firstByteAt: uploader.firstSentAt ?? Date.now(),
  };
}
