import type { Generated, Selectable } from 'kysely';

export interface DestinationTable {
  id: string;
  team_id: string;
  name: string;
  /** Only 's3' so far: every provider offered (AWS, Hetzner, B2, R2, self-hosted) speaks the S3 API. */
  kind: 's3';
  /** Null means the AWS default endpoint for the region. */
  endpoint: string | null;
  region: string;
  bucket: string;
  /** Where under the bucket strackt writes: '' or a path without leading or trailing slash. */
  prefix: Generated<string>;
  path_style: boolean;
  /** Not secret by itself, but responses show only its tail. */
  access_key_id: string;
  /** The secret access key, sealed in vault_secrets (kind destination-secret-key). */
  secret_id: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  /** When the connectivity check last passed; a failed check leaves it as it was. */
  last_checked_at: Date | null;
}
export type Destination = Selectable<DestinationTable>;
