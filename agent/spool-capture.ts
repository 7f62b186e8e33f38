import { createHash } from 'node:crypto';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import type { Logger } from '../common/log.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/data-key.ts';
import { sealManifest } from '../format/manifest-object.ts';
import { buildManifest } from '../format/manifest.ts';
import { keyIdOf } from '../format/team-key.ts';
import { readHeld, type HeldRead } from './held-read.ts';
import type { Runtime } from './runtime.ts';
import type { SpoolUploader } from './spool-uploader.ts';
import { SpoolFullError, SpoolWriter, type CapturedRecord, type UploadSpool } from './upload-spool.ts';
import { isoTime } from '../common/iso-time.ts';

export interface SpoolCaptureInput {
  snapshotId: string;
  /** The team's public key (not secret): enough to seal a snapshot, never to open one. */
  teamPublicKey: string;
}

/**
 * The spool's writer: each full part goes to the uploader. The capture only waits for the network
 * when the disk is short: then for uploads to make room, or it fails when none is under way.
 */
function spoolWriter(spool: UploadSpool, uploader: SpoolUploader, onCaptured: (bytes: number) => void) {
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
  return writer;
}

type Captured = HeldRead<Awaited<ReturnType<typeof writeArchive>>>;

/** The manifest sealed beside the data, and the capture's figures: the spool now holds a whole capture. */
async function markCaptured(
  serverId: string,
  spec: EnvironmentSpec,
  input: SpoolCaptureInput,
  spool: UploadSpool,
  keys: { publicKey: Buffer; dataKey: Buffer },
  writer: SpoolWriter,
  { result: archive, since, heldMs, methods }: Captured,
): Promise<CapturedRecord> {
  const manifest = buildManifest(
    {
      snapshotId: input.snapshotId,
      teamId: spec.teamId,
      environmentId: spec.environmentId,
      environmentName: spec.name,
      sourceServerId: serverId,
      createdAt: isoTime(since),
      keyId: keyIdOf(keys.publicKey).toString('hex'),
      services: spec.services.map((s) => ({ name: s.name, volumes: s.volumes })),
    },
    archive,
  );
  const sealed = await sealManifest(manifest, keys.publicKey, keys.dataKey);
  keys.dataKey.fill(0);
  const record: CapturedRecord = {
    partSize: spool.partSize,
    parts: writer.parts,
    sizeBytes: writer.size,
    dataSha256: writer.digest(),
    manifestSha256: createHash('sha256').update(sealed).digest('hex'),
    tarBytes: archive.tarBytes,
    entries: archive.entries.length,
    frozenMs: heldMs,
    methods,
    capturedAt: Date.now(),
    volumes: manifest.volumes,
  };
  await spool.markCaptured(record, sealed);
  return record;
}

/**
 * One point in time of every volume of the environment (readHeld), encrypted into the spool; parts
 * go to the uploader as they fill.
 */
export async function captureIntoSpool(
  runtime: Runtime,
  serverId: string,
  spec: EnvironmentSpec,
  input: SpoolCaptureInput,
  spool: UploadSpool,
  uploader: SpoolUploader,
  onCaptured: (bytes: number) => void,
  log: Logger,
): Promise<CapturedRecord> {
  await spool.reset();
  const keys = { publicKey: Buffer.from(input.teamPublicKey, 'hex'), dataKey: newDataKey() };
  const writer = spoolWriter(spool, uploader, onCaptured);
  const captured = await readHeld(runtime, spec, input.snapshotId, log, ({ volumes, rootOf, release }) =>
    writeArchive({
      root: rootOf,
      volumes,
      publicKey: keys.publicKey,
      dataKey: keys.dataKey,
      sink: writer,
      onSourceRead: release,
    }),
  );
  const record = await markCaptured(serverId, spec, input, spool, keys, writer, captured);
  const { entries, tarBytes, sizeBytes, frozenMs, methods } = record;
  log.info({ volumes: record.volumes, entries, tarBytes, sizeBytes, frozenMs, methods }, 'captured');
  return record;
}
