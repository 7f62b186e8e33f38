import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The agent's X25519 public key, sent at enrolment: a restore's data key is re-sealed to it.
  await db.schema.alterTable('servers').addColumn('agent_public_key', 'text').execute();
  await db.schema
    .createTable('restores')
    .addColumn('operation_id', 'text', (c) => c.primaryKey().references('operations.id').onDelete('cascade'))
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('environment_id', 'text', (c) => c.notNull().references('environments.id').onDelete('cascade'))
    .addColumn('snapshot_id', 'text', (c) => c.notNull().references('snapshots.id'))
    .addColumn('target_server_id', 'text', (c) => c.notNull())
    // Where the environment lived when the restore began, if elsewhere: stopped there, data left in place.
    .addColumn('previous_server_id', 'text')
    // The snapshot's data key sealed to the target agent's public key: useless to anyone else.
    .addColumn('sealed_data_key', 'text')
    .addColumn('downtime_ms', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('restores').execute();
  await db.schema.alterTable('servers').dropColumn('agent_public_key').execute();
}
