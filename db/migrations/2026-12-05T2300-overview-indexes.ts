import { sql, type Kysely } from 'kysely';

// What the backups overview (which pages poll) looks up per environment, at thousands of them
// (bench:load): without these, each look-up scans every schedule, or every run of one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('backup_schedules_environment')
    .on('backup_schedules')
    .column('environment_id')
    .execute();
  // Missed runs are few among a schedule's thousands of good ones: counted and listed from these alone.
  await sql`create index schedule_runs_without_snapshot on schedule_runs (schedule_id, nominal_at desc)
            where status in ('failed', 'skipped', 'missed')`.execute(db);
  // The latest verification of an environment's snapshots, without reading the unverified ones.
  await sql`create index snapshots_environment_verified on snapshots (environment_id, verified_at desc)
            where verified_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('snapshots_environment_verified').execute();
  await db.schema.dropIndex('schedule_runs_without_snapshot').execute();
  await db.schema.dropIndex('backup_schedules_environment').execute();
}
