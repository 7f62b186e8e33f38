import type { Generated, Selectable } from 'kysely';

/** Both sealed columns are AES-256-GCM output laid out as IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes). */
export interface VaultSecretTable {
  id: string;
  team_id: string;
  /** What the secret is (e.g. team-secret-key); bound into both seals so a row cannot be relabelled. */
  kind: string;
  /** The secret's own data key, sealed under the master key. */
  wrapped_key: Buffer;
  /** The secret, sealed under its data key. */
  ciphertext: Buffer;
  created_at: Generated<Date>;
}
export type VaultSecret = Selectable<VaultSecretTable>;
