import { DomainError } from '../common/errors.ts';
import { BlobOpener } from '../format/v2/blob.ts';
import { FormatV2Error } from '../format/v2/errors.ts';
import { openPackDataKey } from './pack-data-key.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/** A blob of a pack, where the chunk index says it lies. */
export interface BlobCopy {
  chunkId: Buffer;
  packId: string;
  objectKey: string;
  offset: number;
  length: number;
  rawLength: number;
}

/**
 * Of the copies an agent reports damaged, those the control plane finds damaged too: its pack gone or
 * unreadable, or the blob short, failing authentication, holding other content than its id, or not
 * its indexed size. The agent is not trusted: a copy is marked bad only on what the control plane
 * reads itself (the reported blobs only, a few per verification that found damage).
 */
export async function damagedCopies<C extends BlobCopy>(
  store: SnapshotStore,
  team: { keyId: Buffer; publicKey: Buffer; secretKey: Buffer },
  dedupKey: Buffer,
  copies: C[],
): Promise<C[]> {
  const byPack = new Map<string, C[]>();
  for (const copy of copies) {
    const inPack = byPack.get(copy.packId);
    if (inPack) inPack.push(copy);
    else byPack.set(copy.packId, [copy]);
  }
  const opener = new BlobOpener(dedupKey);
  const damaged: C[] = [];
  for (const [packId, inPack] of byPack) {
    let dataKey: Buffer;
    try {
      dataKey = await openPackDataKey(store, { id: packId, object_key: inPack[0]!.objectKey }, team);
    } catch (err) {
      if (err instanceof DomainError && err.code === 'pack_unreadable') damaged.push(...inPack);
      else throw err;
      continue;
    }
    try {
      for (const copy of inPack) {
        const blob = await store.readRange(copy.objectKey, copy.offset, copy.length);
        if (!blob || blob.length !== copy.length || !opens(opener, dataKey, copy, blob)) damaged.push(copy);
      }
    } finally {
      dataKey.fill(0);
    }
  }
  return damaged;
}

function opens(opener: BlobOpener, dataKey: Buffer, copy: BlobCopy, blob: Buffer): boolean {
  try {
    return opener.open(dataKey, copy.chunkId, blob).length === copy.rawLength;
  } catch (err) {
    if (err instanceof FormatV2Error) return false;
    throw err;
  }
}
