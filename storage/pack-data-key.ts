import { DomainError } from '../common/errors.ts';
import { openDataKey } from '../format/data-key.ts';
import { FormatV2Error } from '../format/v2/errors.ts';
import { parsePreamble, preambleBytes } from '../format/v2/pack-layout.ts';
import type { SnapshotStore } from './snapshot-store.ts';

const unreadable = (message: string) => new DomainError('conflict', 'pack_unreadable', message);

/**
 * A pack's data key, from its 112-byte preamble (docs/FORMAT.md, "Pack"), opened with the team key:
 * the only bytes of a pack the control plane reads for a restore, never its blobs. A pack gone, or
 * whose preamble is not ours, is damage the restore reports (pack_unreadable), not a retry.
 */
export async function openPackDataKey(
  store: SnapshotStore,
  pack: { id: string; object_key: string },
  team: { keyId: Buffer; publicKey: Buffer; secretKey: Buffer },
): Promise<Buffer> {
  const preamble = await store.readRange(pack.object_key, 0, preambleBytes);
  if (!preamble || preamble.length < preambleBytes)
    throw unreadable(`pack ${pack.id} is gone from the storage or shorter than its preamble`);
  let sealed;
  try {
    const parsed = parsePreamble(preamble);
    if (!parsed.keyId.equals(team.keyId)) throw unreadable(`pack ${pack.id} was sealed with another key`);
    sealed = parsed.sealedDataKey;
  } catch (err) {
    if (err instanceof FormatV2Error) throw unreadable(`pack ${pack.id}: ${err.message}`);
    throw err;
  }
  const dataKey = openDataKey(sealed, team.publicKey, team.secretKey);
  if (!dataKey) throw unreadable(`the team key does not open pack ${pack.id} (its sealed key is altered)`);
  return dataKey;
}
