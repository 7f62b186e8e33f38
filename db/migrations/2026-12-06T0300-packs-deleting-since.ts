import type { Kysely } from 'kysely';

// When garbage collection marked a pack deleting: a restore or verification that began before then
// may have been told its chunks lie there, so the object stays until that one ends. Packs marked
// before this column have none and wait for no one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('packs').addColumn('deleting_since', 'timestamptz').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('packs').dropColumn('deleting_since').execute();
}
