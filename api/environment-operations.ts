import { DomainError } from '../common/errors.ts';
import { getEnvironment } from '../db/environments.data.ts';
import { getServer } from '../db/servers.data.ts';
import { defaultRestorePoint, getSnapshot } from '../db/snapshots.data.ts';
import type { Operation } from '../db/tables/operation.table.ts';
import { requireAgentConnected, requireEnrolledAgent } from './agent-connected.ts';
import { startOperation, type OperationExtra, type OperationStarterDeps } from './operation-starter.ts';

export interface EnvironmentOperationDeps extends OperationStarterDeps {
  agentStaleAfterMs: number;
}

/** Deploy, stop or back up an environment on its own server, refused while its agent is away. */
export async function operateEnvironment<K extends 'deploy' | 'stop' | 'backup'>(
  deps: EnvironmentOperationDeps,
  teamId: string,
  id: string,
  kind: K,
  extra: OperationExtra<K>,
): Promise<Operation> {
  const env = await getEnvironment(deps.db, teamId, id);
  await requireAgentConnected(deps, env.server_id);
  return startOperation(deps, { teamId, environmentId: env.id, serverId: env.server_id, kind }, extra);
}

/** A restore, after every refusal a user can act on, before anything is touched on any server. */
export async function restoreEnvironment(
  deps: EnvironmentOperationDeps,
  teamId: string,
  id: string,
  input: { snapshotId?: string; targetServerId: string },
): Promise<Operation> {
  const { db } = deps;
  const env = await getEnvironment(db, teamId, id);
  const snapshot = input.snapshotId
    ? await getSnapshot(db, teamId, input.snapshotId)
    : await defaultRestorePoint(db, teamId, env.id);
  if (snapshot.environment_id !== env.id) {
    throw new DomainError(
      'invalid',
      'snapshot_of_another_environment',
      `snapshotId: snapshot ${snapshot.id} is a snapshot of environment ${snapshot.environment_id}, not of ${env.id}`,
      'snapshotId',
    );
  }
  // Another team's server is, for this team, no server at all.
  const target = await getServer(db, teamId, input.targetServerId);
  await requireEnrolledAgent(deps, target);
  return startOperation(
    deps,
    { teamId, environmentId: env.id, serverId: target.id, kind: 'restore' },
    { snapshotId: snapshot.id },
  );
}
