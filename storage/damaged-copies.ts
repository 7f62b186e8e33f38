import { openedBlobs, type BlobCopy } from './opened-blobs.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/**
 * Of the copies an agent reports damaged, those the control plane finds damaged too (opened-blobs.ts
 * says what counts). The agent is not trusted: a copy is marked bad only on what the control plane
 * reads itself (the reported blobs only, a few per verification that found damage).
 */
export async function damagedCopies<C extends BlobCopy>(
  store: SnapshotStore,
  team: { keyId: Buffer; publicKey: Buffer; secretKey: Buffer },
  dedupKey: Buffer,
  copies: C[],
): Promise<C[]> {
  const damaged: C[] = [];
  for await (const [copy, chunk] of openedBlobs(store, team, dedupKey, copies))
    if (!chunk) damaged.push(copy);
  return damaged;
}
