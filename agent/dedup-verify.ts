import { randomInt } from 'node:crypto';
import type { Logger } from '../common/log.ts';
import { packAccessPerAsk } from '../common/pack-upload-limits.ts';
import { openDataKey } from '../format/data-key.ts';
import { BlobOpener } from '../format/v2/blob.ts';
import { FormatV2Error } from '../format/v2/errors.ts';
import type { AgentKey } from './agent-key.ts';
import {
  ControlPlaneError,
  type ChunkPlace,
  type ControlPlaneClient,
  type PackAccess,
  type RestoreAccess,
} from './control-plane-client.ts';
import { openDedupManifest } from './dedup-restore.ts';
import { DownloadError, downloadRange } from './http-download.ts';
import type { RateLimit } from './rate-limit.ts';
import { RestoreError, type RestoreRef } from './stored-snapshot.ts';

// Verifying a format-2 snapshot (docs/FORMAT.md, "Version 2"): its manifest, then every pack holding
// its chunks (or a random share of them) read by ranges, every blob authenticated, checked to hold
// the chunk its id names and of the size indexed. Nothing is written. Damaged copies are reported to
// the control plane, which checks them itself and marks them bad so the next backup uploads them
// anew. Loaded at first use (snapshot-verify.ts), like the restore's format-2 code.

export interface DedupVerifyDeps {
  controlPlane: Pick<
    ControlPlaneClient,
    'dedupKey' | 'locateVerificationChunks' | 'verificationPackAccess' | 'reportDamage'
  >;
  agentKey: AgentKey;
  downloadLimit?: RateLimit;
  log: Logger;
}

export interface DedupVerifyInput {
  ref: RestoreRef & { subset?: number };
  access: RestoreAccess;
  /** The manifest's, sealed to this agent by the control plane and opened. */
  dataKey: Buffer;
  signal?: AbortSignal;
  onFetched: (bytes: number) => void;
}

interface Damage {
  chunkId: string;
  packId: string;
  reason: string;
}

/** One request reads neighbouring blobs up to this many bytes (what a read holds in memory). */
const rangeBytes = 16 * 1024 * 1024;

/** Blobs of a pack in runs of neighbours, one ranged read each. */
function runs(places: ChunkPlace[]): ChunkPlace[][] {
  const out: ChunkPlace[][] = [];
  for (const p of [...places].sort((a, b) => a.offset - b.offset)) {
    const run = out.at(-1);
    const last = run?.at(-1);
    if (
      run &&
      last &&
      p.offset === last.offset + last.length &&
      p.offset + p.length - run[0]!.offset <= rangeBytes
    )
      run.push(p);
    else out.push([p]);
  }
  return out;
}

/** `percent` of the packs, at least one, chosen at random (all of them at 100). */
function share<T>(items: T[], percent: number): T[] {
  if (percent >= 100) return items;
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, Math.max(1, Math.ceil((pool.length * percent) / 100)));
}

const unreadable = (err: unknown) => err instanceof ControlPlaneError && err.code === 'pack_unreadable';

export async function verifyDedupSnapshot(
  deps: DedupVerifyDeps,
  input: DedupVerifyInput,
): Promise<{ entries: number; bytes: number }> {
  const { ref, access: a } = input;
  const cp = deps.controlPlane;
  const manifest = await openDedupManifest(a, input.dataKey, ref);
  const ids = [...new Set(manifest.entries.flatMap((e) => (e.type === 'file' ? e.chunks! : [])))];
  const places = await cp.locateVerificationChunks(ref.operationId, ids);
  const located = new Set(places.map((p) => p.chunkId));
  const unlocated = ids.filter((id) => !located.has(id));
  const byPack = new Map<string, ChunkPlace[]>();
  for (const p of places) {
    const inPack = byPack.get(p.packId);
    if (inPack) inPack.push(p);
    else byPack.set(p.packId, [p]);
  }
  const packs = share([...byPack.keys()], ref.subset ?? 100);
  deps.log.info(
    { snapshotId: a.snapshotId, chunks: ids.length, packs: packs.length, of: byPack.size },
    'verifying the snapshot (format 2)',
  );

  const damage: Damage[] = [];
  const opener = new BlobOpener(await cp.dedupKey());
  let fetched = 0;
  const gone = (packId: string, unread: ChunkPlace[], reason: string) =>
    damage.push(...unread.map((p) => ({ chunkId: p.chunkId, packId, reason })));

  /** Access to a batch of packs; when one is unreadable, asked one by one to learn which. */
  async function accessTo(batch: string[]): Promise<PackAccess[]> {
    try {
      return await cp.verificationPackAccess(ref.operationId, batch);
    } catch (err) {
      if (!unreadable(err) || batch.length === 1) throw err;
    }
    const out: PackAccess[] = [];
    for (const packId of batch)
      out.push(
        ...(await cp.verificationPackAccess(ref.operationId, [packId]).catch((err: unknown) => {
          if (!unreadable(err)) throw err;
          gone(packId, byPack.get(packId)!, (err as Error).message);
          return [];
        })),
      );
    return out;
  }

  async function check(pack: PackAccess) {
    const dataKey = openDataKey(
      Buffer.from(pack.sealedDataKey, 'hex'),
      deps.agentKey.publicKey,
      deps.agentKey.secretKey,
    );
    if (!dataKey)
      throw new RestoreError(
        'WrongKey',
        `the data key of pack ${pack.packId} was not sealed to this agent's key`,
      );
    const limit = deps.downloadLimit;
    try {
      const all = runs(byPack.get(pack.packId)!);
      for (const [k, run] of all.entries()) {
        const start = run[0]!.offset;
        const end = run.at(-1)!.offset + run.at(-1)!.length;
        let bytes: Buffer;
        try {
          bytes = await downloadRange(
            pack.url,
            { start, end },
            input.signal,
            limit && ((b) => limit.paced(b)),
          );
        } catch (err) {
          // The storage refusing a range of a pack it listed: the pack is gone or shorter than indexed.
          if (!(err instanceof DownloadError && err.status && err.status >= 400 && err.status < 500))
            throw err;
          gone(pack.packId, all.slice(k).flat(), `pack ${pack.packId} could not be read: ${err.message}`);
          return;
        }
        fetched += bytes.length;
        input.onFetched(fetched);
        for (const p of run) {
          const blob = bytes.subarray(p.offset - start, p.offset - start + p.length);
          try {
            const plain = opener.open(dataKey, Buffer.from(p.chunkId, 'hex'), blob);
            if (plain.length !== p.rawLength)
              throw new FormatV2Error(
                'corrupt_framing',
                `blob ${p.chunkId.slice(0, 16)}: ${plain.length} bytes, indexed ${p.rawLength}`,
              );
          } catch (err) {
            if (!(err instanceof FormatV2Error)) throw err;
            damage.push({
              chunkId: p.chunkId,
              packId: pack.packId,
              reason: `pack ${pack.packId}: ${err.message}`,
            });
          }
        }
      }
    } finally {
      dataKey.fill(0);
    }
  }

  for (let at = 0; at < packs.length; at += packAccessPerAsk)
    for (const pack of await accessTo(packs.slice(at, at + packAccessPerAsk))) await check(pack);

  if (damage.length === 0 && unlocated.length === 0)
    return { entries: manifest.entries.length, bytes: fetched };
  const marked =
    damage.length > 0
      ? await cp.reportDamage(
          'verifications',
          ref.operationId,
          damage.map(({ chunkId, packId }) => ({ chunkId, packId })),
        )
      : 0;
  deps.log.warn({ damaged: damage.length, unlocated: unlocated.length, marked }, 'the snapshot is damaged');
  const reasons = [
    ...new Set([
      ...damage.map((d) => d.reason),
      ...unlocated.map((id) => `chunk ${id.slice(0, 16)} has no good copy in any pack`),
    ]),
  ];
  throw new RestoreError(
    'SnapshotCorrupt',
    `${damage.length + unlocated.length} of ${ids.length} chunks are missing or corrupt: ${reasons.slice(0, 3).join('; ')}${reasons.length > 3 ? `; and ${reasons.length - 3} more` : ''}`,
  );
}
