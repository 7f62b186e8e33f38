import { sql, type Kysely } from 'kysely';

// Format 2's chunk index (docs/ARCHITECTURE.md, "Chunk index (format 2)").
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('packs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('destination_id', 'text', (c) => c.notNull().references('destinations.id').onDelete('cascade'))
    // Packs outlive the environment and the backup that wrote them: the pool is shared by the team.
    .addColumn('environment_id', 'text', (c) => c.references('environments.id').onDelete('set null'))
    .addColumn('snapshot_id', 'text', (c) => c.references('snapshots.id').onDelete('set null'))
    .addColumn('object_key', 'text', (c) => c.notNull().unique())
    .addColumn('size_bytes', 'bigint')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('uploading', 'stored', 'deleting')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('stored_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('packs_destination')
    .on('packs')
    .columns(['destination_id', 'status'])
    .execute();
  await db.schema
    .createTable('pack_chunks')
    .addColumn('pack_id', 'text', (c) => c.notNull().references('packs.id').onDelete('cascade'))
    .addColumn('chunk_id', 'bytea', (c) => c.notNull().check(sql`octet_length(chunk_id) = 32`))
    .addColumn('offset', 'integer', (c) => c.notNull())
    .addColumn('length', 'integer', (c) => c.notNull())
    .addColumn('raw_length', 'integer', (c) => c.notNull())
    .addColumn('verified_at', 'timestamptz')
    .addColumn('bad_at', 'timestamptz')
    .addPrimaryKeyConstraint('pack_chunks_pkey', ['pack_id', 'chunk_id'])
    .execute();
  await db.schema.createIndex('pack_chunks_chunk').on('pack_chunks').column('chunk_id').execute();
  for (const table of ['snapshot_chunks', 'chunk_claims'])
    await db.schema
      .createTable(table)
      .addColumn('snapshot_id', 'text', (c) => c.notNull().references('snapshots.id').onDelete('cascade'))
      .addColumn('chunk_id', 'bytea', (c) => c.notNull().check(sql`octet_length(chunk_id) = 32`))
      .addPrimaryKeyConstraint(`${table}_pkey`, ['snapshot_id', 'chunk_id'])
      .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['chunk_claims', 'snapshot_chunks', 'pack_chunks', 'packs'])
    await db.schema.dropTable(table).execute();
}
