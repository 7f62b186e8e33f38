import { type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The schedule's retention rule (restic's counts); null: keep everything.
  await db.schema.alterTable('backup_schedules').addColumn('retention', 'jsonb').execute();
  // A pinned snapshot is never pruned.
  await db.schema
    .alterTable('snapshots')
    .addColumn('pinned', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('snapshots').dropColumn('pinned').execute();
  await db.schema.alterTable('backup_schedules').dropColumn('retention').execute();
}
