import type { Kysely } from 'kysely';

// A backup's packs by their state: how many it has in flight (api/agent-packs.routes.ts bounds them),
// and the rows a deleted snapshot sets free (its foreign key), without scanning every pack of every team.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('packs_snapshot').on('packs').columns(['snapshot_id', 'status']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('packs_snapshot').execute();
}
