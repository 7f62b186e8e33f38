import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // How the agent took each volume at the snapshot's point in time (a Btrfs snapshot, a reflinked
  // copy, or read while the services were held), beside frozen_ms, how long they were held. Null for
  // snapshots of agents before file-system snapshots, which read every volume under the hold.
  await db.schema.alterTable('snapshots').addColumn('volume_methods', 'jsonb').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('snapshots').dropColumn('volume_methods').execute();
}
