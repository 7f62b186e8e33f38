import { createHash } from 'node:crypto';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import type { Logger } from '../common/log.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/data-key.ts';
import { sealManifest } from '../format/manifest-object.ts';
import { buildManifest } from '../format/manifest.ts';
import { keyIdOf } from '../format/team-key.ts';
import { runPostHooks, runPreHooks } from './backup-hooks.ts';
import { CaptureJournal, type CaptureDebt } from './capture-journal.ts';
import { makeVolume, planSnapshots, removeSnapshots } from './fs-snapshots.ts';
import { holdStill, strategyOf } from './hold-still.ts';
import type { Runtime } from './runtime.ts';
import { holdWithSnapshots, type SnapshotHeld } from './snapshot-hold.ts';
import type { SpoolUploader } from './spool-uploader.ts';
import { SpoolFullError, SpoolWriter, type CapturedRecord, type UploadSpool } from './upload-spool.ts';

export interface SpoolCaptureInput {
  snapshotId: string;
  /** The team's public key (not secret): enough to seal a snapshot, never to open one. */
  teamPublicKey: string;
}

/** Every volume of the environment, sorted, its folder made: tar is given every name, written to yet or not. */
async function volumesOf(runtime: Runtime, spec: EnvironmentSpec): Promise<string[]> {
  const volumes = [...new Set(spec.services.flatMap((s) => s.volumes))].sort();
  // volumePath refuses a name that is not a plain one: tar is given these names, as they are.
  for (const volume of volumes) await makeVolume(runtime.volumePath(spec.environmentId, volume));
  return volumes;
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

type ArchiveResult = Awaited<ReturnType<typeof writeArchive>>;

interface Captured {
  archive: ArchiveResult;
  writer: SpoolWriter;
  held: SnapshotHeld;
  heldMs: number;
}

/** The manifest sealed beside the data, and the capture's figures: the spool now holds a whole capture. */
async function markCaptured(
  serverId: string,
  spec: EnvironmentSpec,
  input: SpoolCaptureInput,
  spool: UploadSpool,
  keys: { publicKey: Buffer; dataKey: Buffer },
  { archive, writer, held, heldMs }: Captured,
): Promise<CapturedRecord> {
  const manifest = buildManifest(
    {
      snapshotId: input.snapshotId,
      teamId: spec.teamId,
      environmentId: spec.environmentId,
      environmentName: spec.name,
      sourceServerId: serverId,
      createdAt: new Date(held.since).toISOString(),
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
    methods: held.methods,
    capturedAt: Date.now(),
    volumes: manifest.volumes,
  };
  await spool.markCaptured(record, sealed);
  return record;
}

/**
 * One point in time of every volume of the environment, encrypted into the spool: pre hooks, the
 * environment held still by its strategy (hold-still.ts) and its volumes snapshotted inside that hold
 * where their file systems can (snapshot-hold.ts), released as soon as the snapshots exist or else
 * the moment tar is done, post hooks. The release and the post hooks always happen, whatever fails, and a journal on
 * disk makes a restarted agent do them if this one dies. Parts go to the uploader as they fill.
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
  const volumes = await volumesOf(runtime, spec);
  const writer = spoolWriter(spool, uploader, onCaptured);
  const journal = new CaptureJournal(runtime.capturesRoot());
  const tree = runtime.fsSnapshotsRoot(spec.environmentId);
  // What an earlier capture could not remove goes first: its snapshots would stand in the way.
  await removeSnapshots(tree, volumes);
  const plan = await planSnapshots((v) => runtime.volumePath(spec.environmentId, v), tree, volumes);
  let debt: CaptureDebt = {
    environmentId: spec.environmentId,
    snapshotId: input.snapshotId,
    restart: false,
    postHooks: spec.services.some((s) => s.backupHooks?.post),
    snapshots: plan.filter((p) => p.method !== 'read').map((p) => p.volume),
  };
  const strategy = strategyOf(spec);
  log.info({ strategy, volumes, plan }, 'capturing');

  let held: SnapshotHeld | undefined;
  let archive: ArchiveResult | undefined;
  let captureFailure: unknown;
  await journal.note(debt);
  try {
    await runPreHooks(runtime, spec);
    const oweRestart = (restart: boolean) => journal.note((debt = { ...debt, restart }));
    const holding = await holdWithSnapshots(
      holdStill[strategy],
      { runtime, spec, oweRestart },
      plan,
      tree,
      log,
    );
    held = holding;
    archive = await writeArchive({
      root: (volume) => holding.rootOf(volume),
      volumes,
      publicKey: keys.publicKey,
      dataKey: keys.dataKey,
      sink: writer,
      onSourceRead: () => void held?.release(),
    });
  } catch (err) {
    captureFailure = err;
  }
  const heldMs = (await held?.release()) ?? 0;
  const postFailure = await runPostHooks(runtime, spec).then(
    () => undefined,
    (err: unknown) => err,
  );
  await journal.settle(spec.environmentId);
  // After a failed capture its own error is the one to report, not a post hook's.
  if (captureFailure || !archive || !held) throw captureFailure;
  if (postFailure) throw postFailure;

  const record = await markCaptured(serverId, spec, input, spool, keys, { archive, writer, held, heldMs });
  const { entries, tarBytes, sizeBytes, frozenMs, methods } = record;
  log.info({ volumes: record.volumes, entries, tarBytes, sizeBytes, frozenMs, methods }, 'captured');
  return record;
}
