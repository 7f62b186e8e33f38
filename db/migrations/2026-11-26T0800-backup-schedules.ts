import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('backup_schedules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('environment_id', 'text', (c) => c.notNull().references('environments.id').onDelete('cascade'))
    .addColumn('destination_id', 'text', (c) => c.notNull().references('destinations.id'))
    // What the user saved (preset and its fields, or a cron expression), shown back as given.
    .addColumn('body', 'jsonb', (c) => c.notNull())
    // What Temporal runs: the expression the body stands for, in the schedule's zone.
    .addColumn('cron', 'text', (c) => c.notNull())
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull())
    .addColumn('overlap', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('schedule_runs')
    .addColumn('schedule_id', 'text', (c) =>
      c.notNull().references('backup_schedules.id').onDelete('cascade'),
    )
    // The time Temporal meant the run for; a retried activity finds its own row by it.
    .addColumn('nominal_at', 'timestamptz', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('operation_id', 'text')
    .addColumn('snapshot_id', 'text')
    .addColumn('error', 'text')
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('schedule_runs_pk', ['schedule_id', 'nominal_at'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('schedule_runs').execute();
  await db.schema.dropTable('backup_schedules').execute();
}
