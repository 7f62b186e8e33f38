import { Kysely } from 'kysely';
import { PostgresJSDialect } from 'kysely-postgres-js';
import postgres from 'postgres';
import type { AgentTaskTable } from './tables/agent-task.table.ts';
import type { ApiTokenTable } from './tables/api-token.table.ts';
import type { DestinationTable } from './tables/destination.table.ts';
import type { EnvironmentTable } from './tables/environment.table.ts';
import type { IdempotencyKeyTable } from './tables/idempotency-key.table.ts';
import type { OperationTable } from './tables/operation.table.ts';
import type { PackChunkTable, PackTable } from './tables/pack.table.ts';
import type { RestoreTable } from './tables/restore.table.ts';
import type { BackupScheduleTable, ScheduleRunTable } from './tables/schedule.table.ts';
import type { ServerTable } from './tables/server.table.ts';
import type { ChunkClaimTable, SnapshotChunkTable } from './tables/snapshot-chunk.table.ts';
import type { SnapshotTable } from './tables/snapshot.table.ts';
import type { TeamKeyTable } from './tables/team-key.table.ts';
import type { TeamTable } from './tables/team.table.ts';
import type { VaultSecretTable } from './tables/vault-secret.table.ts';
import type { VerificationTable } from './tables/verification.table.ts';
import type { WebhookDeliveryTable, WebhookTable } from './tables/webhook.table.ts';

export interface Database {
  teams: TeamTable;
  api_tokens: ApiTokenTable;
  servers: ServerTable;
  environments: EnvironmentTable;
  operations: OperationTable;
  verifications: VerificationTable;
  vault_secrets: VaultSecretTable;
  team_keys: TeamKeyTable;
  destinations: DestinationTable;
  snapshots: SnapshotTable;
  restores: RestoreTable;
  backup_schedules: BackupScheduleTable;
  schedule_runs: ScheduleRunTable;
  webhooks: WebhookTable;
  webhook_deliveries: WebhookDeliveryTable;
  agent_tasks: AgentTaskTable;
  idempotency_keys: IdempotencyKeyTable;
  packs: PackTable;
  pack_chunks: PackChunkTable;
  snapshot_chunks: SnapshotChunkTable;
  chunk_claims: ChunkClaimTable;
}

export type Db = Kysely<Database>;

/** What db.destroy() gives queries still running before it closes their connections. */
const endTimeoutSeconds = 5;

export function createDb(databaseUrl: string, options: { max?: number } = {}): Db {
  const client = postgres(databaseUrl, {
    max: options.max ?? 10,
    onnotice: () => {},
    connect_timeout: 10,
    // No JIT compilation: every query here is short, and a plan costed high on statistics taken while
    // a table was small (the chunk index after a first backup) was compiled for 90 ms to run for 3.
    connection: { jit: 'off' },
  });
  // Kysely's destroy() ends the pool with no timeout, which waits for every connection it ever
  // reserved: after an hour of bench:load an API process, and another day the worker, never got past
  // it on SIGTERM (the cause is not found yet). Bounded, a stopping process exits all the same.
  const end = client.end.bind(client);
  client.end = (opts) => end({ timeout: endTimeoutSeconds, ...opts });
  return new Kysely<Database>({ dialect: new PostgresJSDialect({ postgres: client }) });
}
