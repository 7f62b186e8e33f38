import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // A snapshot's last verification; and pruning's states: 'deleting' (chosen, objects going; never
  // offered again) then 'deleted' (objects gone; the row stays so restores that used it still name it).
  await db.schema
    .alterTable('snapshots')
    .addColumn('verified_at', 'timestamptz')
    .addColumn('verification', 'text')
    .addColumn('verification_error', 'text')
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  await db.schema
    .alterTable('backup_schedules')
    .addColumn('verify_after_backup', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  // What the agent verifying a snapshot collects: the data key re-sealed to its own key, as a restore's.
  await db.schema
    .createTable('verifications')
    .addColumn('operation_id', 'text', (c) => c.primaryKey().references('operations.id').onDelete('cascade'))
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('snapshot_id', 'text', (c) => c.notNull().references('snapshots.id'))
    .addColumn('server_id', 'text', (c) => c.notNull().references('servers.id').onDelete('cascade'))
    .addColumn('sealed_data_key', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // A verification only reads: it may run beside a backup or restore of the same environment.
  await sql`drop index operations_one_active_per_environment`.execute(db);
  await sql`create unique index operations_one_active_per_environment on operations (environment_id)
            where status in ('pending', 'running') and kind <> 'verify'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index operations_one_active_per_environment`.execute(db);
  await sql`create unique index operations_one_active_per_environment on operations (environment_id)
            where status in ('pending', 'running')`.execute(db);
  await db.schema.dropTable('verifications').execute();
  await db.schema.alterTable('backup_schedules').dropColumn('verify_after_backup').execute();
  await db.schema
    .alterTable('snapshots')
    .dropColumn('deleted_at')
    .dropColumn('verification_error')
    .dropColumn('verification')
    .dropColumn('verified_at')
    .execute();
}
