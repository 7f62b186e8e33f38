import { openStore, type StoreOf } from '../storage/destination-store.ts';
import type { Db } from './database.ts';
import { openDestination } from './destinations.data.ts';
import type { Vault } from './vault.ts';

/** The stores of the destinations in the database, opened with their credentials from the vault. */
export function destinationStores(db: Db, vault: Vault): StoreOf {
  return async (teamId, destinationId) => openStore(await openDestination(db, vault, teamId, destinationId));
}
