import { sql, type Kysely } from 'kysely';

// The server whose agent wrote a pack: its copies count as held for every environment of that server
// (db/chunk-index.data.ts), whose data that agent holds anyway. Packs of a backup still running get
// theirs from it; packs written before this column have none and keep counting for their environment.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('packs')
    .addColumn('server_id', 'text', (c) => c.references('servers.id').onDelete('set null'))
    .execute();
  // Deleting a server sets its packs' column to null: found by index, not by reading every pack.
  await db.schema.createIndex('packs_server').on('packs').column('server_id').execute();
  await sql`update packs set server_id = s.source_server_id from snapshots s where s.id = packs.snapshot_id`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('packs_server').execute();
  await db.schema.alterTable('packs').dropColumn('server_id').execute();
}
