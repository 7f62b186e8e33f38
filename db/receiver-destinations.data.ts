import { randomBytes } from 'node:crypto';
import { newId } from '../common/ids.ts';
import type { TlsPin } from '../storage/pinned-client.ts';
import type { Db } from './database.ts';
import { nameTaken, pruneTokenKind, writerKeyKind } from './destinations.data.ts';
import type { Destination } from './tables/destination.table.ts';
import type { Vault } from './vault.ts';

export interface ReceiverInput {
  name: string;
  url: string;
  pin: TlsPin;
}

/**
 * Stores a receiver destination with fresh credentials: a writer key and a prune token, both sealed in
 * the vault. `enrol` hands them to the receiver; it runs inside the transaction, so a receiver that
 * refuses leaves no row, and a row exists only for a receiver that took its credentials.
 */
export async function createReceiverDestination(
  db: Db,
  vault: Vault,
  teamId: string,
  input: ReceiverInput,
  enrol: (credentials: { writerKey: Buffer; pruneToken: string }) => Promise<void>,
): Promise<Destination> {
  const writerKey = randomBytes(32);
  const pruneToken = randomBytes(32).toString('base64url');
  try {
    return await db.transaction().execute(async (trx) => {
      const secretId = await vault.put(trx, { teamId, kind: writerKeyKind, secret: writerKey });
      const pruneSecretId = await vault.put(trx, {
        teamId,
        kind: pruneTokenKind,
        secret: Buffer.from(pruneToken, 'utf8'),
      });
      const row = await trx
        .insertInto('destinations')
        .values({
          id: newId('dst'),
          team_id: teamId,
          name: input.name,
          kind: 'receiver',
          endpoint: null,
          region: null,
          bucket: null,
          prefix: '',
          path_style: false,
          access_key_id: null,
          secret_id: secretId,
          prune_secret_id: pruneSecretId,
          receiver_url: input.url,
          receiver_fingerprint: 'fingerprint' in input.pin ? input.pin.fingerprint : null,
          receiver_ca: 'ca' in input.pin ? input.pin.ca : null,
          last_checked_at: new Date(),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await enrol({ writerKey, pruneToken });
      return row;
    });
  } catch (err) {
    throw nameTaken(err, input.name);
  } finally {
    writerKey.fill(0);
  }
}
