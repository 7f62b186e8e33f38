import { stat } from 'node:fs/promises';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import { transferred, type Logger } from '../common/log.ts';
import { runPostHooks } from './backup-hooks.ts';
import { CaptureJournal } from './capture-journal.ts';
import { confined } from './confined-path.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { removeSnapshots } from './fs-snapshots.ts';
import { PartUploadError, putFile } from './http-upload.ts';
import type { RateLimit } from './rate-limit.ts';
import type { Runtime } from './runtime.ts';
import { captureIntoSpool, type SpoolCaptureInput } from './spool-capture.ts';
import { SpoolUploader } from './spool-uploader.ts';
import { UploadSpool, type CapturedRecord, type UploadedPart } from './upload-spool.ts';

export interface CaptureInput extends SpoolCaptureInput {
  environmentId: string;
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

/**
 * A restarted agent first pays what a backup it was running when it died still owed: its file-system
 * snapshots are removed, services stopped for the capture are started, post hooks run. (Paused ones
 * are resumed by thawAll.)
 */
export async function settleInterruptedCaptures(
  runtime: Runtime,
  controlPlane: Pick<ControlPlaneClient, 'environmentSpec'>,
  log: Logger,
): Promise<void> {
  const journal = new CaptureJournal(runtime.capturesRoot());
  for (const debt of await journal.outstanding()) {
    try {
      // First, and without the control plane: snapshots hold disk space the services may need.
      await removeSnapshots(runtime.fsSnapshotsRoot(debt.environmentId), debt.snapshots ?? []);
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
