import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Per-volume entries and bytes as the sealed manifest states them, reported by the agent with its
  // capture: the control plane cannot open the manifest, and must not need to. Null for older snapshots.
  await db.schema.alterTable('snapshots').addColumn('volumes', 'jsonb').execute();
  // GET /operations pages a team's operations newest first, by (created_at, id).
  await sql`create index operations_team_newest on operations (team_id, created_at desc, id desc)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index operations_team_newest`.execute(db);
  await db.schema.alterTable('snapshots').dropColumn('volumes').execute();
}
