import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('snapshots')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('environment_id', 'text', (c) => c.notNull().references('environments.id').onDelete('cascade'))
    .addColumn('destination_id', 'text', (c) => c.notNull().references('destinations.id'))
    .addColumn('source_server_id', 'text', (c) => c.notNull())
    .addColumn('operation_id', 'text', (c) => c.notNull())
    // uploading: parts may exist in the bucket but it is not a snapshot yet; only complete ones are listed.
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('data_key', 'text', (c) => c.notNull())
    .addColumn('manifest_key', 'text', (c) => c.notNull())
    .addColumn('upload_id', 'text')
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint')
    .addColumn('tar_bytes', 'bigint')
    .addColumn('entries', 'integer')
    .addColumn('data_sha256', 'text')
    .addColumn('manifest_sha256', 'text')
    .addColumn('frozen_ms', 'integer')
    .addColumn('capture_ms', 'integer')
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('completed_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('snapshots_environment')
    .on('snapshots')
    .columns(['environment_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('snapshots').execute();
}
