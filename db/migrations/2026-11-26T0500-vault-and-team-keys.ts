import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Each secret under its own data key, which is stored wrapped by the master key (db/vault.ts).
  await db.schema
    .createTable('vault_secrets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('wrapped_key', 'bytea', (c) => c.notNull())
    .addColumn('ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // One key per team: the primary key is what makes a second creation a conflict, even under a race.
  await db.schema
    .createTable('team_keys')
    .addColumn('team_id', 'text', (c) => c.primaryKey().references('teams.id').onDelete('cascade'))
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    .addColumn('key_id', 'bytea', (c) => c.notNull())
    .addColumn('secret_id', 'text', (c) => c.notNull().unique().references('vault_secrets.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['team_keys', 'vault_secrets']) {
    await db.schema.dropTable(table).execute();
  }
}
