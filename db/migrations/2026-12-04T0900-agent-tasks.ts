import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // A host step waiting for or running on a server's agent. The Temporal task token stays here: the
  // agent gets only the row's id, and the API answers Temporal for it (asynchronous completion).
  await db.schema
    .createTable('agent_tasks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('server_id', 'text', (c) => c.notNull().references('servers.id').onDelete('cascade'))
    .addColumn('activity', 'text', (c) => c.notNull())
    .addColumn('input', 'jsonb', (c) => c.notNull())
    .addColumn('task_token', 'bytea', (c) => c.notNull())
    .addColumn('workflow_id', 'text', (c) => c.notNull())
    .addColumn('activity_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('claimed_at', 'timestamptz')
    .execute();
  // A retry replaces its earlier attempt: one row per activity of a workflow.
  await db.schema
    .createIndex('agent_tasks_one_per_activity')
    .on('agent_tasks')
    .columns(['workflow_id', 'activity_id'])
    .unique()
    .execute();
  await sql`create index agent_tasks_waiting on agent_tasks (server_id, created_at) where claimed_at is null`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('agent_tasks').execute();
}
