import type { Generated, Selectable } from 'kysely';

export interface DestinationTable {
  id: string;
  team_id: string;
  name: string;
  /** 's3': a bucket of any S3-compatible provider; 'receiver': strackt's receiver on a server of the customer's. */
  kind: 's3' | 'receiver';
  /** Null means the AWS default endpoint for the region. */
  endpoint: string | null;
  /** Set for 's3' only (as are bucket and access_key_id). */
  region: string | null;
  bucket: string | null;
  /** Where under the bucket strackt writes: '' or a path without leading or trailing slash. */
  prefix: Generated<string>;
  path_style: boolean;
  /** Not secret by itself, but responses show only its tail. */
  access_key_id: string | null;
  /**
   * Sealed in vault_secrets: the secret access key (kind destination-secret-key), or a receiver's writer
   * key (kind receiver-writer-key).
   */
  secret_id: string;
  /** A receiver's base URL, and how its certificate is trusted: a SHA-256 fingerprint, or a CA (PEM). */
  receiver_url: string | null;
  receiver_fingerprint: string | null;
  receiver_ca: string | null;
  /** A receiver's prune token (kind receiver-prune-token): deletes, for retention; never leaves the control plane. */
  prune_secret_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  /** When the connectivity check last passed; a failed check leaves it as it was. */
  last_checked_at: Date | null;
}
export type Destination = Selectable<DestinationTable>;
