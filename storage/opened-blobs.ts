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
 * Each of these copies as the control plane reads it itself, pack by pack (one ranged read over the
 * span of a pack's copies): its chunk, or undefined when its pack is gone or unreadable or the blob
 * is short, fails authentication, holds other content than its id, or is not its indexed size.
 */
export async function* openedBlobs<C extends BlobCopy>(
  store: SnapshotStore,
  team: { keyId: Buffer; publicKey: Buffer; secretKey: Buffer },
  dedupKey: Buffer,
  copies: C[],
): AsyncGenerator<[C, Buffer | undefined]> {
  const byPack = new Map<string, C[]>();
  for (const copy of copies) {
    const inPack = byPack.get(copy.packId);
    if (inPack) inPack.push(copy);
    else byPack.set(copy.packId, [copy]);
  }
  const opener = new BlobOpener(dedupKey);
  for (const [packId, inPack] of byPack) {
    let dataKey: Buffer;
    try {
      dataKey = await openPackDataKey(store, { id: packId, object_key: inPack[0]!.objectKey }, team);
    } catch (err) {
      if (!(err instanceof DomainError && err.code === 'pack_unreadable')) throw err;
      for (const copy of inPack) yield [copy, undefined];
      continue;
    }
    try {
      const from = Math.min(...inPack.map((c) => c.offset));
      const to = Math.max(...inPack.map((c) => c.offset + c.length));
      const span = (await store.readRange(inPack[0]!.objectKey, from, to - from)) ?? Buffer.alloc(0);
      for (const copy of inPack)
        yield [
          copy,
          opened(opener, dataKey, copy, span.subarray(copy.offset - from, copy.offset - from + copy.length)),
        ];
    } finally {
      dataKey.fill(0);
    }
  }
}

function opened(opener: BlobOpener, dataKey: Buffer, copy: BlobCopy, blob: Buffer): Buffer | undefined {
  if (blob.length !== copy.length) return undefined;
  try {
    const plain = opener.open(dataKey, copy.chunkId, blob);
    return plain.length === copy.rawLength ? plain : undefined;
  } catch (err) {
    if (err instanceof FormatV2Error) return undefined;
    throw err;
  }
}
