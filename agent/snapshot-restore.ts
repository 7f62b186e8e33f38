import { statfsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { transferred, type Logger } from '../common/log.ts';
import { unpackArchive } from '../format/archive-reader.ts';
import { ContainerOpener } from '../format/container-opener.ts';
import type { Manifest } from '../format/manifest.ts';
import type { AgentKey } from './agent-key.ts';
// Types only: the module itself is loaded at a format-2 restore's first use (idle memory).
import type { DedupUnpackInput } from './dedup-restore.ts';
import { confined } from './confined-path.ts';
import type { ControlPlaneClient, RestoreAccess } from './control-plane-client.ts';
import { counted, download } from './http-download.ts';
import type { RateLimit } from './rate-limit.ts';
import type { Runtime } from './runtime.ts';
import {
  classify,
  dataObject,
  fetchManifest,
  openAccess,
  RestoreError,
  type RestoreRef,
} from './stored-snapshot.ts';

export interface RestoreDeps {
  runtime: Runtime;
  controlPlane: Pick<
    ControlPlaneClient,
    'restoreAccess' | 'dedupKey' | 'locateRestoreChunks' | 'restorePackAccess' | 'reportDamage'
  >;
  agentKey: AgentKey;
  /** A cap on the agent's download bandwidth (STRACKT_DOWNLOAD_MIB_PER_SECOND). */
  downloadLimit?: RateLimit;
  /** The task's logger (its operation and environment ids bound). */
  log: Logger;
}

export interface PreflightResult {
  entries: number;
  unpackedBytes: number;
  freeBytes: number;
}

export interface FetchProgress {
  bytesFetched: number;
  bytesExpected: number;
  entriesDone: number;
}

export interface FetchResult {
  bytes: number;
  /** Entries a previous, interrupted attempt had written and verified: not written again. */
  resumedAfterEntries: number;
  entries: number;
  unpackedBytes: number;
}

// Room left beside the snapshot, so a restore never fills a disk to its last block.
const diskMargin = 64 * 1024 * 1024;

/**
 * Where a restore works on the target, on the volumes' own filesystem so the swap is two renames:
 * `<restores>/<environment>/<operation>/` with `staging/` (the unpacked snapshot), `checkpoint`
 * (how many entries of it are written and verified: an interrupted unpack resumes if it is above 0),
 * in format 2 `written` (the chunks written: dedup-restore.ts) and, after the swap, `previous/` (the
 * data it replaced, kept until the environment's next restore here).
 */
function paths(runtime: Runtime, { operationId, environmentId }: RestoreRef) {
  const envDir = runtime.restoresRoot(environmentId);
  const dir = confined(envDir, operationId);
  return {
    envDir,
    dir,
    checkpoint: join(dir, 'checkpoint'),
    journal: join(dir, 'written'),
    staging: join(dir, 'staging'),
    previous: join(dir, 'previous'),
    swapped: join(dir, 'swapped'),
    live: runtime.volumesRoot(environmentId),
  };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Format 2's unpack, loaded at first use: an agent that never restores format 2 keeps none of it. */
async function unpackV2(deps: RestoreDeps, input: DedupUnpackInput) {
  const { unpackDedupSnapshot } = await import('./dedup-restore.ts');
  return unpackDedupSnapshot(deps, input);
}

async function access(
  deps: RestoreDeps,
  operationId: string,
): Promise<{ access: RestoreAccess; dataKey: Buffer }> {
  return openAccess(deps.agentKey, await deps.controlPlane.restoreAccess(operationId));
}

const unpackedBytes = (m: Manifest) => m.entries.reduce((sum, e) => sum + (e.size ?? 0), 0);

/** Format 1: the manifest, and the data object's header authenticated by its first chunk. */
async function checkStoredV1(a: RestoreAccess, dataKey: Buffer, ref: RestoreRef) {
  const manifest = await fetchManifest(a, dataKey, ref);
  const opener = new ContainerOpener({ dataKey }, Buffer.from(a.keyId, 'hex'));
  const controller = new AbortController();
  let authenticated = false;
  try {
    const res = await download(dataObject(a), controller.signal);
    for await (const data of res) {
      opener.push(data);
      do authenticated = opener.next() !== undefined;
      while (!authenticated && !opener.needsInput);
      if (authenticated) break;
    }
  } catch (err) {
    classify(err);
  } finally {
    controller.abort();
  }
  if (!authenticated)
    throw new RestoreError('SnapshotCorrupt', 'the stored snapshot ends before its first chunk');
  return { entries: manifest.entries.length, bytes: unpackedBytes(manifest) };
}

/** Format 2: the manifest (packs are checked blob by blob as the unpack reads them). */
async function checkStoredV2(a: RestoreAccess, dataKey: Buffer, ref: RestoreRef) {
  const { openDedupManifest, unpackedBytesV2 } = await import('./dedup-restore.ts');
  const manifest = await openDedupManifest(a, dataKey, ref);
  return { entries: manifest.entries.length, bytes: unpackedBytesV2(manifest) };
}

/**
 * Before anything is touched: the manifest opens with the re-sealed key and names this snapshot, in
 * format 1 the data object's header authenticates (its first chunk decrypts with the header as
 * additional data), and the disk holds the unpacked snapshot beside the data it replaces.
 */
export async function preflightRestore(deps: RestoreDeps, ref: RestoreRef): Promise<PreflightResult> {
  const { envDir } = paths(deps.runtime, ref);
  const { access: a, dataKey } = await access(deps, ref.operationId);
  try {
    const stored =
      a.formatVersion === 2 ? await checkStoredV2(a, dataKey, ref) : await checkStoredV1(a, dataKey, ref);
    const need = stored.bytes + diskMargin;
    await mkdir(envDir, { recursive: true });
    const fs = await statfs(envDir);
    const freeBytes = fs.bavail * fs.bsize;
    if (freeBytes < need) {
      throw new RestoreError(
        'NotEnoughDisk',
        `the restore needs ${need} bytes free on ${envDir} for the unpacked snapshot, only ${freeBytes} are`,
      );
    }
    return { entries: stored.entries, unpackedBytes: stored.bytes, freeBytes };
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Streams the data object into staging, every chunk authenticated and every file checked against
 * the manifest, while the services keep running. Nothing is spooled: a second copy on disk cost a
 * third of the throughput on the benchmark. After an interruption (an agent restart) a format-1
 * object is fetched and checked again from its start, but the entries the checkpoint names as written
 * and verified are not written again; format 2 fetches only the chunks not written yet.
 */
export async function fetchAndUnpack(
  deps: RestoreDeps,
  ref: RestoreRef,
  onProgress: (p: FetchProgress) => void,
  signal?: AbortSignal,
): Promise<FetchResult> {
  const started = Date.now();
  const p = paths(deps.runtime, ref);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  const checkpoint = Number((await readFile(p.checkpoint, 'utf8').catch(() => '')) || 0);
  const resume = checkpoint > 0 && (await exists(p.staging)) ? { entriesDone: checkpoint } : undefined;
  if (!resume) await rm(p.staging, { recursive: true, force: true });
  if (!resume) await rm(p.journal, { force: true });
  const { access: a, dataKey } = await access(deps, ref.operationId);
  if (resume) {
    deps.log.info({ entriesDone: checkpoint }, 'resuming an interrupted restore');
  }
  let fetched = 0;
  let entriesDone = checkpoint;
  let saved = Promise.resolve();
  let savedAt = 0;
  const report = () => onProgress({ bytesFetched: fetched, bytesExpected: a.bytesExpected, entriesDone });

  // The services run on this disk while the unpack writes to it: the unpack stops while the disk
  // still has room, whoever else is filling it, rather than take its last blocks from them.
  const room = new AbortController();
  // Synchronous: a statfs is a few microseconds, and the unpack asks before every buffer it writes.
  const watchRoom = () => {
    let free = Infinity;
    try {
      const fs = statfsSync(p.dir);
      free = fs.bavail * fs.bsize;
    } catch {
      // The folder is gone: the unpack fails on its own.
    }
    if (free < diskMargin && !room.signal.aborted)
      room.abort(
        new RestoreError(
          'DiskFull',
          `the disk holding ${p.dir} is nearly full (${free} bytes left, ${diskMargin} kept free): the unpack stopped before it filled`,
        ),
      );
  };
  const roomCheck = () => {
    watchRoom();
    room.signal.throwIfAborted();
  };
  // At most once a second, one write at a time: the checkpoint may lag, never run ahead.
  const checkpointed = (n: number) => {
    entriesDone = n;
    watchRoom();
    if (Date.now() - savedAt < 1000) return;
    savedAt = Date.now();
    saved = saved.then(() => writeFile(p.checkpoint, String(n))).catch(() => undefined);
  };
  const watcher = setInterval(watchRoom, 250);
  const stop = signal ? AbortSignal.any([signal, room.signal]) : room.signal;
  const onFetched = (bytes: number) => {
    fetched = bytes;
    report();
  };
  // Format 1 streams its data object through the unpacker, checkpointing what is written and verified.
  const unpackV1 = async () => {
    const manifest = await fetchManifest(a, dataKey, ref);
    deps.log.info(
      { snapshotId: a.snapshotId, volumes: manifest.volumes, bytesExpected: a.bytesExpected },
      'fetching the snapshot',
    );
    const body = await download(dataObject(a), stop);
    const source = counted(deps.downloadLimit?.paced(body) ?? body, onFetched);
    return unpackArchive({
      source,
      key: { dataKey },
      expectedKeyId: Buffer.from(a.keyId, 'hex'),
      manifest,
      staging: p.staging,
      resume,
      keepStagingOnFailure: true,
      // Before every buffer written too: the timer alone let a fast disk fill between two of its looks.
      roomCheck: async () => roomCheck(),
      onCheckpoint: checkpointed,
    }).catch(classify);
  };
  try {
    const result =
      a.formatVersion === 2
        ? await unpackV2(deps, {
            ref,
            access: a,
            dataKey,
            staging: p.staging,
            signal: stop,
            onFetched,
            roomCheck,
            journal: p.journal,
            resume: resume !== undefined,
            onEntriesDone: checkpointed,
          })
        : await unpackV1();
    await saved;
    // The staging root becomes the environment's volumes folder: services of other users traverse it.
    await chmod(p.staging, 0o755);
    await rm(p.checkpoint, { force: true });
    await rm(p.journal, { force: true });
    entriesDone = result.entries;
    report();
    deps.log.info(
      { ...transferred(fetched, started), entries: result.entries, unpackedBytes: result.bytes },
      'unpacked into staging',
    );
    return {
      bytes: fetched,
      resumedAfterEntries: resume?.entriesDone ?? 0,
      entries: result.entries,
      unpackedBytes: result.bytes,
    };
  } catch (err) {
    await saved;
    // A refused snapshot or a full disk will not come right: drop what was unpacked. Anything else
    // (the network, the agent stopping) keeps it for the retry to resume.
    if (err instanceof RestoreError) await rm(p.dir, { recursive: true, force: true });
    throw err;
  } finally {
    clearInterval(watcher);
    dataKey.fill(0);
  }
}

/**
 * Staging becomes the volumes, the volumes become `previous/`: two renames on one filesystem. A
 * retry after a crash between them finishes what is left.
 */
export async function swapIn(runtime: Runtime, ref: RestoreRef): Promise<void> {
  const p = paths(runtime, ref);
  if (await exists(p.swapped)) return;
  try {
    await mkdir(join(p.live, '..'), { recursive: true });
    if ((await exists(p.live)) && !(await exists(p.previous))) await rename(p.live, p.previous);
    await rename(p.staging, p.live);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') {
      throw new RestoreError(
        'CannotSwap',
        `${p.live} is on another filesystem than ${p.dir}: the swap needs renames`,
      );
    }
    throw err;
  }
  await writeFile(p.swapped, '');
}

/** Compensation: the data as it was before the swap, wherever the swap got to. */
export async function swapBack(runtime: Runtime, ref: RestoreRef): Promise<void> {
  const p = paths(runtime, ref);
  const discarded = join(p.dir, 'discarded');
  // Staging went live (the swap finished, or got past its second rename): set it aside.
  if (((await exists(p.swapped)) || !(await exists(p.staging))) && (await exists(p.live))) {
    await rename(p.live, discarded);
  }
  if (!(await exists(p.live)) && (await exists(p.previous))) await rename(p.previous, p.live);
  await rm(p.swapped, { force: true });
  await rm(discarded, { recursive: true, force: true });
}

/** After a failure before the swap (or after compensation): nothing of this restore stays on disk. */
export async function discardRestore(runtime: Runtime, ref: RestoreRef): Promise<void> {
  await rm(paths(runtime, ref).dir, { recursive: true, force: true });
}

/** After a commit: keep this restore's `previous/` (a way back), drop older restores' leftovers. */
export async function finishRestore(runtime: Runtime, ref: RestoreRef): Promise<void> {
  const p = paths(runtime, ref);
  for (const name of await readdir(p.envDir).catch(() => [] as string[])) {
    if (name !== ref.operationId) await rm(join(p.envDir, name), { recursive: true, force: true });
  }
  await rm(p.swapped, { force: true });
}
