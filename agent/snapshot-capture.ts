import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/data-key.ts';
import { sealManifest } from '../format/manifest-object.ts';
import { buildManifest } from '../format/manifest.ts';
import { keyIdOf } from '../format/team-key.ts';
import { transferred, type Logger } from '../common/log.ts';
import { confined } from './confined-path.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { PartUploadError, putFile } from './http-upload.ts';
import type { RateLimit } from './rate-limit.ts';
import { SpoolUploader } from './spool-uploader.ts';
import {
  SpoolFullError,
  SpoolWriter,
  UploadSpool,
  type CapturedRecord,
  type UploadedPart,
} from './upload-spool.ts';
import { CaptureJournal } from './capture-journal.ts';
import type { Runtime } from './runtime.ts';

export interface CaptureInput {
  snapshotId: string;
  environmentId: string;
  /** The team's public key (not secret): enough to seal a snapshot, never to open one. */
  teamPublicKey: string;
}

/** What the snapshot record needs: the capture's own figures (as spooled), and how the upload went. */
export interface CaptureResult extends Omit<CapturedRecord, 'partSize' | 'parts' | 'capturedAt'> {
  parts: UploadedPart[];
  captureMs: number;
  /** Epoch ms at which the first part left for the storage. */
  firstByteAt: number;
  /** Parts a retry found already in the bucket and did not send again (0 for a backup in one go). */
  partsResumed: number;
}

export interface CaptureProgress {
  bytesCaptured: number;
  /** The whole encrypted snapshot's size once the capture is done; until then unknown (null). */
  bytesExpected: number | null;
  bytesUploaded: number;
  partsUploaded: number;
  /** The parts the storage took, as ranges ("1-12,14"): with the spool on the agent's disk, what a retry resumes from. */
  completedParts: string;
}

function ranges(numbers: number[]): string {
  const sorted = [...numbers].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const first = sorted[i]!;
    while (sorted[i + 1] === sorted[i]! + 1) i++;
    out.push(first === sorted[i] ? `${first}` : `${first}-${sorted[i]}`);
  }
  return out.join(',');
}

// 16 MiB parts: 10,000 parts (S3's limit) then cover 160 GB of compressed snapshot.
const partSize = 16 * 1024 * 1024;

export interface CaptureDeps {
  runtime: Runtime;
  controlPlane: Pick<ControlPlaneClient, 'partUrls' | 'manifestUrl' | 'uploadedParts'>;
  serverId: string;
  /** The agent's upload bandwidth cap, if it has one. */
  uploadLimit?: RateLimit;
  log: Logger;
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
  log: Logger,
): Promise<void> {
  const journal = new CaptureJournal(runtime.capturesRoot());
  for (const debt of await journal.outstanding()) {
    try {
      const spec = await controlPlane.environmentSpec(debt.environmentId);
      if (debt.restart) await runtime.start(spec);
      if (debt.postHooks) await runPostHooks(runtime, spec);
      log.info(debt, 'settled a backup interrupted by an agent restart');
    } catch (err) {
      log.error({ ...debt, err }, 'could not settle an interrupted backup');
    }
    await journal.settle(debt.environmentId);
  }
}

const sameEtag = (a: string, b: string) => a.replace(/"/g, '') === b.replace(/"/g, '');

/**
 * A retry after the capture was whole sends only what the bucket lacks. A part counts as stored
 * when ListParts shows it with the size and ETag this capture noted when the storage took it (an
 * abandoned earlier capture may have left a part of the same number and size); any other is sent
 * again from its segment. Undefined when a part is neither stored nor spooled: capture again.
 */
async function resumeFromSpool(
  controlPlane: Pick<ControlPlaneClient, 'uploadedParts'>,
  spool: UploadSpool,
  uploader: SpoolUploader,
  snapshotId: string,
  log: Logger,
): Promise<{ record: CapturedRecord; resumed: number; firstSentAt: number | undefined } | undefined> {
  const record = await spool.captured();
  if (!record || record.partSize !== spool.partSize) return undefined;
  const [listed, noted] = await Promise.all([controlPlane.uploadedParts(snapshotId), spool.uploaded()]);
  const inBucket = new Map(listed.map((p) => [p.partNumber, p]));
  const kept: (UploadedPart & { sentAt: number })[] = [];
  const missing: { partNumber: number; size: number }[] = [];
  for (let partNumber = 1; partNumber <= record.parts; partNumber++) {
    const size =
      partNumber < record.parts ? record.partSize : record.sizeBytes - (record.parts - 1) * record.partSize;
    const stored = inBucket.get(partNumber);
    const mine = noted.get(partNumber);
    if (stored && mine && stored.size === size && sameEtag(stored.etag, mine.etag)) kept.push(mine);
    else if (await spool.hasSegment(partNumber, size)) missing.push({ partNumber, size });
    else return undefined;
  }
  log.info({ partsStored: kept.length, partsToSend: missing.length }, 'resuming an upload from the spool');
  uploader.adopt(kept.map(({ partNumber, etag, size }) => ({ partNumber, etag, size })));
  for (const part of missing) uploader.add(part.partNumber, part.size);
  const firstSentAt = kept.length ? Math.min(...kept.map((p) => p.sentAt)) : undefined;
  return { record, resumed: kept.length, firstSentAt };
}

/**
 * One point in time of every volume of the environment, encrypted into the spool. Pre hooks run
 * first; then, by the environment's strategy, its services are paused (SIGSTOP, `freeze`) or stopped
 * (`stop`) while tar reads, and resumed or started the moment it is done; post hooks run last.
 * Resuming, starting and post hooks always happen, whatever fails, and a journal on disk makes a
 * restarted agent do them if this one dies. Parts go to the uploader as they fill; the capture
 * itself only waits for the network when the disk is short.
 */
async function captureIntoSpool(
  runtime: Runtime,
  serverId: string,
  spec: EnvironmentSpec,
  input: CaptureInput,
  spool: UploadSpool,
  uploader: SpoolUploader,
  onCaptured: (bytes: number) => void,
  log: Logger,
): Promise<CapturedRecord> {
  await spool.reset();
  const publicKey = Buffer.from(input.teamPublicKey, 'hex');
  const dataKey = newDataKey();
  const volumes = [...new Set(spec.services.flatMap((s) => s.volumes))].sort();
  // volumePath refuses a name that is not a plain one: tar is given these names below, as they are.
  for (const volume of volumes)
    await mkdir(runtime.volumePath(spec.environmentId, volume), { recursive: true });

  const makeRoom = async () => {
    while ((await spool.room()) < spool.partSize) {
      if (uploader.failure) throw uploader.failure;
      if (!uploader.pending)
        throw new SpoolFullError(
          `the disk holding ${spool.dir} is full: no room for the next ${spool.partSize >> 20} MiB of the upload spool`,
        );
      await uploader.oneSettled();
    }
  };
  const writer = new SpoolWriter(
    spool,
    (partNumber, size) => {
      uploader.add(partNumber, size);
      onCaptured(writer.size);
    },
    makeRoom,
  );

  const journal = new CaptureJournal(runtime.capturesRoot());
  const debt = {
    environmentId: spec.environmentId,
    snapshotId: input.snapshotId,
    restart: false,
    postHooks: spec.services.some((s) => s.backupHooks?.post),
  };
  const strategy = spec.backupStrategy ?? 'freeze';
  log.info({ strategy, volumes }, 'capturing');
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
      sink: writer,
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
  const record: CapturedRecord = {
    partSize: spool.partSize,
    parts: writer.parts,
    sizeBytes: writer.size,
    dataSha256: writer.digest(),
    manifestSha256: createHash('sha256').update(sealed).digest('hex'),
    tarBytes: archive.tarBytes,
    entries: archive.entries.length,
    frozenMs: heldMs,
    capturedAt: Date.now(),
    volumes: manifest.volumes,
  };
  await spool.markCaptured(record, sealed);
  log.info(
    {
      volumes: manifest.volumes,
      entries: record.entries,
      tarBytes: record.tarBytes,
      sizeBytes: record.sizeBytes,
      frozenMs: record.frozenMs,
    },
    'captured',
  );
  return record;
}

/**
 * A snapshot of the environment, in the bucket. The capture goes through a spool on the agent's
 * disk, so that a retry (the agent killed, the storage away for a while) sends only the parts the
 * bucket lacks: see UploadSpool. The bytes go straight to the storage through presigned URLs.
 * `signal` stops the upload (the spool stays for a retry): the backup was cancelled, or Temporal no
 * longer runs this attempt (timed out, or the agent's token was rotated).
 */
export async function captureSnapshot(
  { runtime, controlPlane, serverId, uploadLimit, log }: CaptureDeps,
  spec: EnvironmentSpec,
  input: CaptureInput,
  onProgress: (p: CaptureProgress) => void,
  signal?: AbortSignal,
): Promise<CaptureResult> {
  const started = Date.now();
  const spool = new UploadSpool(
    confined(runtime.capturesRoot(), 'spool', spec.environmentId, input.snapshotId),
    partSize,
  );
  await spool.dropOthers();
  let bytesCaptured = 0;
  let bytesExpected: number | null = null;
  let bytesUploaded = 0;
  const report = () =>
    onProgress({
      bytesCaptured,
      bytesExpected,
      bytesUploaded,
      partsUploaded: uploader.parts.length,
      completedParts: ranges(uploader.parts.map((p) => p.partNumber)),
    });
  const uploader = new SpoolUploader({
    spool,
    partUrls: (numbers) => controlPlane.partUrls(input.snapshotId, numbers),
    limit: uploadLimit,
    signal,
    onPart: (_part, bytesDone) => {
      bytesUploaded = bytesDone;
      report();
    },
  });

  const resumed = await resumeFromSpool(controlPlane, spool, uploader, input.snapshotId, log);
  let record = resumed?.record;
  try {
    record ??= await captureIntoSpool(
      runtime,
      serverId,
      spec,
      input,
      spool,
      uploader,
      (bytes) => {
        bytesCaptured = bytes;
        report();
      },
      log,
    );
  } catch (err) {
    await uploader.halt();
    throw err;
  }
  bytesCaptured = bytesExpected = record.sizeBytes;
  report();
  const parts = await uploader.drain();
  signal?.throwIfAborted();
  await putFile(
    await controlPlane.manifestUrl(input.snapshotId),
    spool.manifestPath,
    (await stat(spool.manifestPath)).size,
    {
      sha256: record.manifestSha256,
    },
  ).catch((err: unknown) => {
    if (!(err instanceof PartUploadError)) throw err;
    throw new PartUploadError(`the manifest: ${err.message}`, err.status);
  });
  await spool.remove();
  // The whole step's rate: capture and upload overlap, and a resumed upload sends only what was missing.
  log.info(
    { ...transferred(record.sizeBytes, started), parts: parts.length, partsResumed: resumed?.resumed ?? 0 },
    'uploaded',
  );

  const { partSize: _partSize, parts: _count, capturedAt: _capturedAt, ...figures } = record;
  return {
    ...figures,
    parts,
    captureMs: Date.now() - started,
    firstByteAt: resumed?.firstSentAt ?? uploader.firstSentAt ?? Date.now(),
    partsResumed: resumed?.resumed ?? 0,
  };
}
