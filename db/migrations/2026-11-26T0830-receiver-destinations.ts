import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // A second kind: a receiver the customer runs. It has no bucket, region or access key; its URL and how
  // its certificate is trusted instead. secret_id then holds the writer key (signs agents' URLs);
  // prune_secret_id the prune token, the only credential that may delete.
  await db.schema
    .alterTable('destinations')
    .alterColumn('region', (c) => c.dropNotNull())
    .alterColumn('bucket', (c) => c.dropNotNull())
    .alterColumn('access_key_id', (c) => c.dropNotNull())
    .addColumn('receiver_url', 'text')
    .addColumn('receiver_fingerprint', 'text')
    .addColumn('receiver_ca', 'text')
    .addColumn('prune_secret_id', 'text', (c) => c.unique().references('vault_secrets.id'))
    .execute();
  await db.schema
    .alterTable('destinations')
    .addCheckConstraint(
      'destinations_kind_fields',
      sql`(kind = 's3' and region is not null and bucket is not null and access_key_id is not null)
        or (kind = 'receiver' and receiver_url is not null and prune_secret_id is not null
            and (receiver_fingerprint is not null) <> (receiver_ca is not null))`,
    )
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('destinations').where('kind', '=', 'receiver').execute();
  await db.schema.alterTable('destinations').dropConstraint('destinations_kind_fields').execute();
  await db.schema
    .alterTable('destinations')
    .dropColumn('prune_secret_id')
    .dropColumn('receiver_ca')
    .dropColumn('receiver_fingerprint')
    .dropColumn('receiver_url')
    .alterColumn('region', (c) => c.setNotNull())
    .alterColumn('bucket', (c) => c.setNotNull())
    .alterColumn('access_key_id', (c) => c.setNotNull())
    .execute();
}
