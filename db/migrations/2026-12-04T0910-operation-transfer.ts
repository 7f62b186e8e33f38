import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The live figures of the host step moving data now (bytes, rate, ETA), from the agent's heartbeats.
  await db.schema.alterTable('operations').addColumn('transfer', 'jsonb').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('operations').dropColumn('transfer').execute();
}
