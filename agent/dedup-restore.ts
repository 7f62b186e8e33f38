import { mkdir, open, readFile, rm, truncate } from 'node:fs/promises';
import type { Logger } from '../common/log.ts';
import { packAccessPerAsk } from '../common/pack-upload-limits.ts';
import { openDataKey } from '../format/data-key.ts';
import { FormatV2Error } from '../format/v2/errors.ts';
import { maxManifestV2Bytes, openManifestV2, type ManifestV2 } from '../format/v2/manifest-v2.ts';
import { restoreTree, type ChunkLocation, type PackSource } from '../format/v2/tree-restorer.ts';
import type { AgentKey } from './agent-key.ts';
import {
  ControlPlaneError,
  type ControlPlaneClient,
  type PackAccess,
  type RestoreAccess,
} from './control-plane-client.ts';
import { DownloadError, downloadRange, downloadSmall } from './http-download.ts';
import type { RateLimit } from './rate-limit.ts';
import { classify, RestoreError, type RestoreRef } from './stored-snapshot.ts';

// Restoring a format-2 snapshot (docs/FORMAT.md, "Version 2"): its manifest, opened with the key the
// control plane re-sealed to this agent, then every pack holding its chunks read once, by byte
// ranges, each pack's own data key re-sealed to this agent as it is asked for. Loaded at first use
// (snapshot-restore.ts): an agent that never restores format 2 keeps none of it in memory.

export interface DedupRestoreDeps {
  controlPlane: Pick<
    ControlPlaneClient,
    'dedupKey' | 'locateRestoreChunks' | 'restorePackAccess' | 'reportDamage'
  >;
  agentKey: AgentKey;
  downloadLimit?: RateLimit;
  log: Logger;
}

/** Turns what makes a format-2 snapshot unrestorable into a RestoreError, as classify does for format 1. */
function classifyV2(err: unknown): never {
  if (err instanceof FormatV2Error)
    throw new RestoreError(
      err.kind === 'wrong_key' ? 'WrongKey' : 'SnapshotCorrupt',
      `the stored snapshot: ${err.message}`,
    );
  return classify(err);
}

const unreadable = (err: unknown) => err instanceof ControlPlaneError && err.code === 'pack_unreadable';

/** The manifest, opened, and checked to name the snapshot and environment asked for. */
export async function openDedupManifest(
  a: RestoreAccess,
  dataKey: Buffer,
  ref: RestoreRef,
): Promise<ManifestV2> {
  const sealed = await downloadSmall({ url: a.manifestUrl, pin: a.pin }, maxManifestV2Bytes);
  const manifest = await openManifestV2(sealed, { dataKey }, Buffer.from(a.keyId, 'hex')).catch(classifyV2);
  if (manifest.environmentId !== ref.environmentId || manifest.snapshotId !== a.snapshotId)
    throw new RestoreError(
      'SnapshotCorrupt',
      `the manifest names snapshot ${manifest.snapshotId} of ${manifest.environmentId}, not ${a.snapshotId} of ${ref.environmentId}`,
    );
  return manifest;
}

/**
 * Copies the unpack found damaged, told to the control plane: it reads each again itself and marks
 * those it finds damaged too, so that the next backup uploads their chunks anew. The restore fails
 * on the damage either way; a report that does not get through is logged, not added to it.
 */
async function reportDamage(deps: DedupRestoreDeps, input: DedupUnpackInput, err: FormatV2Error) {
  const copies = [...new Map(err.copies.map((c) => [`${c.chunkId}:${c.packId}`, c])).values()];
  const marked = await deps.controlPlane
    .reportDamage('restores', input.ref.operationId, copies)
    .catch((failure: unknown) => {
      deps.log.warn({ err: failure, copies: copies.length }, 'the damage found could not be reported');
      return undefined;
    });
  if (marked !== undefined)
    deps.log.warn(
      { copies: copies.length, marked },
      'damaged copies reported: the next backup uploads them anew',
    );
}

export const unpackedBytesV2 = (m: ManifestV2) => m.entries.reduce((sum, e) => sum + (e.size ?? 0), 0);

/**
 * The packs as the restore reads them, through the control plane's answers for this restore only.
 * Pack access is asked in batches, in the order the restorer reads the packs: presigned URLs last an
 * hour, so they are asked for shortly before use rather than all at the start.
 */
class RestorePacks implements PackSource {
  /** Packs in the order the restorer reads them (its plan), and how far access was asked. */
  private order: string[] = [];
  private asked = 0;
  private readonly access = new Map<string, Promise<PackAccess>>();
  /** The packs the readers have come to. */
  private readonly reached = new Set<string>();
  private readonly keys: Buffer[] = [];
  /** Bytes fetched by all the readers, and what of them was last told. */
  private fetched = 0;
  private told = 0;

  constructor(
    private readonly deps: DedupRestoreDeps,
    private readonly operationId: string,
    private readonly signal: AbortSignal,
    /** The bytes fetched so far, as they come (each MiB): a range is some MiB, too coarse to watch. */
    private readonly onFetched: (bytes: number) => void,
  ) {}

  async locate(chunkIds: string[]): Promise<Map<string, ChunkLocation>> {
    const places = await this.deps.controlPlane.locateRestoreChunks(this.operationId, chunkIds);
    return new Map(places.map(({ chunkId, ...at }) => [chunkId, at]));
  }

  /** A resumed restore's plan leaves out the packs whose chunks are all written: no access asked. */
  plan(packIds: string[]): void {
    this.order = packIds;
    this.asked = 0;
  }

  private accessOf(packId: string): Promise<PackAccess> {
    if (!this.reached.has(packId)) {
      this.reached.add(packId);
      if (!this.access.has(packId)) this.ask(packId);
      // The next batch asked while a quarter of this one is still to read: asked only once a reader
      // reached a pack outside it, that reader (and soon the others) waited for the whole answer.
      else if (this.asked - this.reached.size < packAccessPerAsk / 4) this.ask();
    }
    return this.access.get(packId)!;
  }

  /** Access to the next packs of the plan not asked yet (after `first`, if a reader needs it now). */
  private ask(first?: string): void {
    const batch = first ? [first] : [];
    while (batch.length < packAccessPerAsk && this.asked < this.order.length) {
      const next = this.order[this.asked++]!;
      if (next !== first && !this.access.has(next)) batch.push(next);
    }
    if (!batch.length) return;
    const { controlPlane } = this.deps;
    const asked = controlPlane.restorePackAccess(this.operationId, batch);
    for (const id of batch) {
      // A batch refused for one pack the control plane cannot read: each asked alone, to learn which.
      const own = asked.catch((err: unknown) => {
        if (!unreadable(err) || batch.length === 1) throw err;
        return controlPlane.restorePackAccess(this.operationId, [id]);
      });
      const pack = own.then(
        (packs) => {
          const found = packs.find((p) => p.packId === id);
          if (!found)
            throw new RestoreError('SnapshotCorrupt', `the control plane gave no access to pack ${id}`);
          return found;
        },
        (err: unknown) => {
          // Damage, not a failure to retry: the pack is gone or its preamble does not read.
          if (unreadable(err)) throw new FormatV2Error('chunk_missing', (err as Error).message);
          throw err;
        },
      );
      // Awaited only when its pack's turn comes, if ever (a failed restore stops early): a failure
      // must not count as unhandled meanwhile, which would end the agent.
      pack.catch(() => undefined);
      this.access.set(id, pack);
    }
  }

  async dataKey(packId: string): Promise<Buffer> {
    const pack = await this.accessOf(packId);
    const { publicKey, secretKey } = this.deps.agentKey;
    const dataKey = openDataKey(Buffer.from(pack.sealedDataKey, 'hex'), publicKey, secretKey);
    if (!dataKey)
      throw new RestoreError('WrongKey', `the data key of pack ${packId} was not sealed to this agent's key`);
    this.keys.push(dataKey);
    return dataKey;
  }

  async read(packId: string, start: number, end: number, into: Buffer): Promise<Buffer> {
    const pack = await this.accessOf(packId);
    const limit = this.deps.downloadLimit;
    const paced = (body: AsyncIterable<Buffer>) => this.counted(limit ? limit.paced(body) : body);
    return downloadRange(pack.url, { start, end }, this.signal, paced, into).catch((err: unknown) => {
      // The storage refusing a range of a pack it listed: gone, or shorter than indexed.
      if (err instanceof DownloadError && err.status === 404)
        throw new FormatV2Error('chunk_missing', `pack ${packId} could not be read: ${err.message}`);
      if (err instanceof DownloadError && err.status === 416)
        throw new FormatV2Error('truncated', `pack ${packId} is shorter than its index says: ${err.message}`);
      throw err;
    });
  }

  private async *counted(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const data of body) {
      this.fetched += data.length;
      if (this.fetched - this.told >= 1 << 20) this.tell();
      yield data;
    }
  }

  /** Tells the bytes fetched so far (at the end: the last of them). */
  tell(): void {
    this.told = this.fetched;
    this.onFetched(this.fetched);
  }

  /** The packs' data keys, wiped once the restore no longer reads. */
  forget(): void {
    for (const key of this.keys) key.fill(0);
  }
}

export interface DedupUnpackInput {
  ref: RestoreRef;
  access: RestoreAccess;
  /** The manifest's, sealed to this agent by the control plane and opened. */
  dataKey: Buffer;
  staging: string;
  signal: AbortSignal;
  onFetched: (bytes: number) => void;
  /** Throws to stop the unpack before it writes more (the disk is nearly full). */
  roomCheck: () => void;
  /**
   * The ids (32 bytes each, appended) of the chunks written at all their targets and checked: what a
   * resumed unpack does not fetch again. Appended after the writes, so it may lag, never run ahead.
   */
  journal: string;
  /** `staging` and `journal` are an interrupted attempt's, kept: the unpack goes on where it stopped. */
  resume: boolean;
  /** Entries whole so far: made, and for a file every chunk written (see the journal). */
  onEntriesDone: (n: number) => void;
}

const idBytes = 32;

/**
 * The chunk ids a journal holds: whole records only. A record cut short (the agent stopped mid-append)
 * is dropped from the file, so that the ones appended after stay aligned.
 */
async function journalled(path: string): Promise<Set<string>> {
  const bytes = await readFile(path).catch(() => Buffer.alloc(0));
  const whole = bytes.length - (bytes.length % idBytes);
  if (whole < bytes.length) await truncate(path, whole);
  const ids = new Set<string>();
  for (let at = 0; at < whole; at += idBytes) ids.add(bytes.subarray(at, at + idBytes).toString('hex'));
  return ids;
}

/**
 * Writes the snapshot's tree into `staging` (made here, empty, unless resumed), every chunk
 * authenticated and checked to be the one its file names. After an interruption (an agent restart)
 * the chunks the journal names are neither fetched nor written again: packs are read by range, so a
 * resume fetches about what is left.
 */
export async function unpackDedupSnapshot(
  deps: DedupRestoreDeps,
  input: DedupUnpackInput,
): Promise<{ entries: number; bytes: number }> {
  // Asked while the manifest downloads: a round trip that need not wait for it.
  const dedupKeyAsked = deps.controlPlane.dedupKey();
  dedupKeyAsked.catch(() => {}); // awaited below, unless the manifest fails first
  const manifest = await openDedupManifest(input.access, input.dataKey, input.ref);
  deps.log.info(
    {
      snapshotId: input.access.snapshotId,
      formatVersion: 2,
      volumes: manifest.volumes,
      bytesExpected: input.access.bytesExpected,
    },
    'fetching the snapshot',
  );
  const source = new RestorePacks(deps, input.ref.operationId, input.signal, input.onFetched);
  const dedupKey = await dedupKeyAsked;
  const written = input.resume ? await journalled(input.journal) : undefined;
  if (written) deps.log.info({ chunksDone: written.size }, 'resuming with the chunks already written');
  else {
    await mkdir(input.staging, { mode: 0o700 });
    await rm(input.journal, { force: true });
  }
  // Appending, whichever reader's range ends first: each record lands whole after the last.
  const journal = await open(input.journal, 'a', 0o600);
  try {
    await restoreTree({
      manifest,
      staging: input.staging,
      source,
      asRoot: process.getuid?.() === 0,
      dedupKey,
      written,
      roomCheck: input.roomCheck,
      onWritten: async (ids, entriesDone) => {
        if (ids.length) await journal.write(Buffer.from(ids.join(''), 'hex'));
        input.onEntriesDone(entriesDone);
      },
    }).catch(async (err: unknown) => {
      if (err instanceof FormatV2Error && err.copies.length > 0) await reportDamage(deps, input, err);
      return classifyV2(err);
    });
    source.tell();
    return { entries: manifest.entries.length, bytes: unpackedBytesV2(manifest) };
  } finally {
    source.forget();
    await journal.close();
  }
}
