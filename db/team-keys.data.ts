import { DomainError, isUniqueViolation, notFound } from '../common/errors.ts';
import {
  fingerprintOf,
  generateTeamKey,
  keyIdOf,
  printableSecretKey,
  publicKeyOf,
} from '../format/team-key.ts';
import { dedupKeyOf } from '../format/v2/chunk-id.ts';
import type { Db } from './database.ts';
import { VaultError, type Vault } from './vault.ts';

const secretKind = 'team-secret-key';

export interface TeamPublicKey {
  publicKey: Buffer;
  keyId: Buffer;
  fingerprint: string;
  createdAt: Date;
}

/**
 * Makes the team's key pair. The secret key goes into the vault and, as printableSecret, back to the
 * caller once: that is the only moment it exists in clear outside the vault.
 */
export async function createTeamKey(
  db: Db,
  vault: Vault,
  teamId: string,
): Promise<TeamPublicKey & { printableSecret: string }> {
  const { publicKey, secretKey } = generateTeamKey();
  const keyId = keyIdOf(publicKey);
  try {
    // The vault row and the key row land together, so a conflict leaves no orphaned secret behind.
    const { created_at } = await db.transaction().execute(async (trx) => {
      const secretId = await vault.put(trx, { teamId, kind: secretKind, secret: secretKey });
      return trx
        .insertInto('team_keys')
        .values({ team_id: teamId, public_key: publicKey, key_id: keyId, secret_id: secretId })
        .returning('created_at')
        .executeTakeFirstOrThrow();
    });
    return {
      publicKey,
      keyId,
      fingerprint: fingerprintOf(publicKey),
      createdAt: created_at,
      printableSecret: printableSecretKey(secretKey),
    };
  } catch (err) {
    if (isUniqueViolation(err, 'team_keys_pkey')) {
      throw new DomainError(
        'conflict',
        'team_key_exists',
        'this team already has a key; its secret key was shown once, when it was created, and is never shown again',
      );
    }
    throw err;
  } finally {
    secretKey.fill(0);
  }
}

export async function getTeamPublicKey(db: Db, teamId: string): Promise<TeamPublicKey | undefined> {
  const row = await db
    .selectFrom('team_keys')
    .select(['public_key', 'key_id', 'created_at'])
    .where('team_id', '=', teamId)
    .executeTakeFirst();
  return (
    row && {
      publicKey: row.public_key,
      keyId: row.key_id,
      fingerprint: fingerprintOf(row.public_key),
      createdAt: row.created_at,
    }
  );
}

/** The team's secret key, for control-plane work that must read snapshots (restores); never for a response. */
export async function openTeamSecretKey(db: Db, vault: Vault, teamId: string): Promise<Buffer> {
  const row = await db
    .selectFrom('team_keys')
    .select(['public_key', 'secret_id'])
    .where('team_id', '=', teamId)
    .executeTakeFirst();
  if (!row) throw notFound('team_key', teamId);
  const secretKey = await vault.open(db, teamId, row.secret_id, secretKind);
  // The vault proves the bytes are the ones it sealed; this proves they belong to this public key.
  if (!publicKeyOf(secretKey).equals(row.public_key)) {
    secretKey.fill(0);
    throw new VaultError(`the vault secret of team ${teamId}'s key does not match its public key`);
  }
  return secretKey;
}

/** The team's dedup key (format 2), for its agents: the secret key it comes from is wiped at once. */
export async function teamDedupKey(db: Db, vault: Vault, teamId: string): Promise<Buffer> {
  const secretKey = await openTeamSecretKey(db, vault, teamId);
  try {
    return dedupKeyOf(secretKey);
  } finally {
    secretKey.fill(0);
  }
}

/**
 * The team's new key if it had none, else undefined: for flows that give a team its key as a side
 * effect (its first destination). Of two racing callers exactly one gets the key, so its secret is
 * still shown once.
 */
export async function createTeamKeyIfMissing(
  db: Db,
  vault: Vault,
  teamId: string,
): Promise<(TeamPublicKey & { printableSecret: string }) | undefined> {
  if (await getTeamPublicKey(db, teamId)) return undefined;
  try {
    return await createTeamKey(db, vault, teamId);
  } catch (err) {
    if (err instanceof DomainError && err.code === 'team_key_exists') return undefined;
    throw err;
  }
}
