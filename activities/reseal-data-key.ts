import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from '../db/database.ts';
import type { Snapshot } from '../db/tables/snapshot.table.ts';
import { getTeamPublicKey, openTeamSecretKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { headerBytes, parseHeader } from '../format/container-layout.ts';
import { openDataKey, sealDataKey } from '../format/data-key.ts';
import { SnapshotFormatError } from '../format/format-error.ts';
import type { StoreOf } from '../storage/destination-store.ts';

export const refuse = (message: string, type: string) => ApplicationFailure.nonRetryable(message, type);

/**
 * Checks a stored snapshot as far as the control plane can without reading it (both objects are
 * there, the header is ours and the team key opens its data key), then seals that data key to an
 * agent's own public key (hex): what the agent restoring or verifying it collects. The team key never
 * leaves this process and the data key never enters Temporal.
 */
export async function resealDataKey(
  { db, vault, storeOf }: { db: Db; vault: Vault; storeOf: StoreOf },
  snapshot: Snapshot,
  agentPublicKeyHex: string,
): Promise<string> {
  const store = await storeOf(snapshot.team_id, snapshot.destination_id);
  // Format 2 has no data object: its manifest is a container with a data key of its own, which is
  // what a restore of it opens first (each pack's key is re-sealed as the agent asks for the pack).
  const sealed = snapshot.format_version === 2 ? snapshot.manifest_key : snapshot.data_key;
  const head =
    (await store.size(snapshot.manifest_key)) === undefined
      ? undefined
      : await store.readStart(sealed, headerBytes);
  if (!head)
    throw refuse(
      `snapshot ${snapshot.id} is listed but its objects are gone from the storage`,
      'SnapshotMissing',
    );
  const team = await getTeamPublicKey(db, snapshot.team_id);
  let header;
  try {
    header = parseHeader(head);
  } catch (err) {
    if (err instanceof SnapshotFormatError)
      throw refuse(`the stored snapshot: ${err.message}`, 'SnapshotCorrupt');
    throw err;
  }
  if (!team || !header.keyId.equals(team.keyId))
    throw refuse('the snapshot was sealed with another key than the team key', 'WrongKey');
  const secretKey = await openTeamSecretKey(db, vault, snapshot.team_id);
  const dataKey = openDataKey(head.subarray(32, 112), team.publicKey, secretKey);
  secretKey.fill(0);
  if (!dataKey)
    throw refuse('the team key does not open this snapshot (its sealed key is altered)', 'SnapshotCorrupt');
  const resealed = sealDataKey(dataKey, Buffer.from(agentPublicKeyHex, 'hex'));
  dataKey.fill(0);
  return resealed.toString('hex');
}
