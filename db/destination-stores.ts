import { openStore, type StoreOf } from '../storage/destination-store.ts';
import type { SnapshotStore } from '../storage/snapshot-store.ts';
import type { Db } from './database.ts';
import { getDestination, openDestinationRow } from './destinations.data.ts';
import type { Vault } from './vault.ts';

// Stores kept open at once: every destination a control plane works with in a while, bounded.
const maxKept = 1_000;

/**
 * The stores of the destinations in the database, opened with their credentials from the vault.
 * Each is kept while its row stays the same: a backup asks for its destination's store four or five
 * times (prepare, part URLs, manifest URL, complete, prune), and opening one meant a vault read, two
 * AES-GCM opens and a new S3 client with its own sockets, so a TLS handshake with the bucket on every
 * call. Every way a destination is reached is on its row (a new secret is a new secret_id), so a
 * changed row opens a new store; an evicted one is left to the garbage collector, as a call may
 * still be using it.
 */
export function destinationStores(db: Db, vault: Vault): StoreOf {
  const kept = new Map<string, { version: string; store: SnapshotStore }>();
  return async (teamId, destinationId) => {
    // Read each time: the team check, and the version. last_checked_at changes with no bearing on access.
    const destination = await getDestination(db, teamId, destinationId);
    const { last_checked_at: _, ...reached } = destination;
    const version = JSON.stringify(reached);
    const hit = kept.get(destinationId);
    if (hit?.version === version) return hit.store;
    const store = openStore(await openDestinationRow(db, vault, destination));
    kept.delete(destinationId); // re-inserted last: the Map's order is then oldest first
    kept.set(destinationId, { version, store });
    if (kept.size > maxKept) kept.delete(kept.keys().next().value!);
    return store;
  };
}
