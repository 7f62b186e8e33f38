import type { Kysely } from 'kysely';

// Which snapshot format a snapshot is in (docs/FORMAT.md): 1, a data object beside its manifest; 2, a
// manifest whose files are chunks in the team's packs. Every snapshot before this column is a 1.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('snapshots')
    .addColumn('format_version', 'smallint', (col) => col.notNull().defaultTo(1))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('snapshots').dropColumn('format_version').execute();
}
