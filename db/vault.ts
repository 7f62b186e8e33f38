import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { Db } from './database.ts';

const ivBytes = 12;
const tagBytes = 16;

/** A secret that exists but cannot be read: the wrong master key, or a row changed behind our back. */
export class VaultError extends Error {
  override name = 'VaultError';
}

interface Binding {
  id: string;
  teamId: string;
  kind: string;
}

/**
 * Additional data for each seal. Naming the row means a sealed value copied onto another secret, team
 * or kind fails to open; naming the purpose keeps a wrapped key and a secret from standing in for each other.
 */
function additionalData(purpose: 'data-key' | 'secret', row: Binding): Buffer {
  return Buffer.from(JSON.stringify(['strackt-vault-v1', purpose, row.id, row.teamId, row.kind]));
}

function seal(key: KeyObject, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagBytes });
  cipher.setAAD(aad);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext, or undefined when the key or the additional data is not the one it was sealed with. */
function unseal(key: KeyObject, sealed: Buffer, aad: Buffer): Buffer | undefined {
  if (sealed.length < ivBytes + tagBytes) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, ivBytes), {
    authTagLength: tagBytes,
  });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(ivBytes, sealed.length - tagBytes)),
      decipher.final(),
    ]);
  } catch {
    return undefined;
  }
}

/**
 * Envelope encryption of team secrets at rest: each secret under a fresh data key, the data key under
 * the master key (VAULT_MASTER_KEY). The database alone, or a dump of it, reveals no secret; a master
 * key change later means rewrapping data keys, not re-encrypting secrets.
 */
export class Vault {
  // A KeyObject rather than a Buffer, so logging or inspecting the vault cannot print the master key.
  readonly #masterKey: KeyObject;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new VaultError('the vault master key must be exactly 32 bytes');
    this.#masterKey = createSecretKey(masterKey);
  }

  async put(
    db: Db,
    { teamId, kind, secret }: { teamId: string; kind: string; secret: Buffer },
  ): Promise<string> {
    const row = { id: newId('sec'), teamId, kind };
    const rawDataKey = randomBytes(32);
    const dataKey = createSecretKey(rawDataKey);
    const wrappedKey = seal(this.#masterKey, rawDataKey, additionalData('data-key', row));
    rawDataKey.fill(0);
    await db
      .insertInto('vault_secrets')
      .values({
        id: row.id,
        team_id: teamId,
        kind,
        wrapped_key: wrappedKey,
        ciphertext: seal(dataKey, secret, additionalData('secret', row)),
      })
      .execute();
    return row.id;
  }

  /**
   * Decrypts one secret of a team, of the kind the caller expects (a webhook's signing key is never
   * handed out where a destination's key was asked for, whatever id a row names); callers hold the
   * result only as long as they use it.
   */
  async open(db: Db, teamId: string, id: string, kind: string): Promise<Buffer> {
    const stored = await db
      .selectFrom('vault_secrets')
      .select(['kind', 'wrapped_key', 'ciphertext'])
      .where('id', '=', id)
      .where('team_id', '=', teamId)
      .executeTakeFirst();
    if (!stored) throw notFound('secret', id);
    if (stored.kind !== kind)
      throw new VaultError(
        `vault secret ${id} of team ${teamId} is a ${stored.kind}, not the ${kind} asked for`,
      );
    const row = { id, teamId, kind: stored.kind };
    const rawDataKey = unseal(this.#masterKey, stored.wrapped_key, additionalData('data-key', row));
    if (!rawDataKey)
      throw new VaultError(
        `vault secret ${id} of team ${teamId} cannot be opened with this VAULT_MASTER_KEY: ` +
          'it was stored under another master key, or its row was altered',
      );
    const dataKey = createSecretKey(rawDataKey);
    rawDataKey.fill(0);
    const secret = unseal(dataKey, stored.ciphertext, additionalData('secret', row));
    if (!secret)
      throw new VaultError(
        `vault secret ${id} of team ${teamId} is damaged: its data key opens but its ciphertext does not`,
      );
    return secret;
  }
}
