import { activeStatuses } from '../common/operations.ts';
import type { BackupStrategy, ServiceSpec } from '../common/environment-spec.ts';
import { DomainError, isUniqueViolation, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { OperationLabels } from '../common/workflow-contracts.ts';
import type { Db } from './database.ts';
import { jsonb } from './jsonb.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import { activeOperation, operationInProgress } from './operations.data.ts';
import { getServer } from './servers.data.ts';
import type { Environment } from './tables/environment.table.ts';

export interface EnvironmentInput {
  name: string;
  serverId: string;
  services: ServiceSpec[];
  backupStrategy?: BackupStrategy;
}

function nameTaken(err: unknown, name: string): unknown {
  return isUniqueViolation(err, 'environments_team_name')
    ? new DomainError(
        'conflict',
        'name_taken',
        `name: an environment named "${name}" already exists in this team`,
      )
    : err;
}

export async function createEnvironment(
  db: Db,
  teamId: string,
  input: EnvironmentInput,
): Promise<Environment> {
  // The server must be the caller's own: this is what stops team B placing work on team A's host.
  await getServer(db, teamId, input.serverId);
  try {
    return await db
      .insertInto('environments')
      .values({
        id: newId('env'),
        team_id: teamId,
        server_id: input.serverId,
        name: input.name,
        services: jsonb(input.services),
        ...(input.backupStrategy && { backup_strategy: input.backupStrategy }),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    throw nameTaken(err, input.name);
  }
}

export function environmentsPage(db: Db, teamId: string, page: PageRequest): Promise<Page<Environment>> {
  return keysetPage(
    db.selectFrom('environments').selectAll().where('team_id', '=', teamId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

export async function getEnvironment(db: Db, teamId: string, id: string): Promise<Environment> {
  const env = await db
    .selectFrom('environments')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!env) throw notFound('environment', id);
  return env;
}

export async function updateEnvironment(
  db: Db,
  teamId: string,
  id: string,
  // The server is not patchable: moving a running environment is a restore onto another server.
  patch: Partial<Omit<EnvironmentInput, 'serverId'>>,
): Promise<Environment> {
  await getEnvironment(db, teamId, id);
  try {
    return await db
      .updateTable('environments')
      .set({
        ...(patch.name !== undefined && { name: patch.name }),
        ...(patch.services !== undefined && { services: jsonb(patch.services) }),
        ...(patch.backupStrategy !== undefined && { backup_strategy: patch.backupStrategy }),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    throw nameTaken(err, patch.name ?? '');
  }
}

export async function deleteEnvironment(db: Db, teamId: string, id: string): Promise<void> {
  await getEnvironment(db, teamId, id);
  const active = await activeOperation(db, id);
  if (active) throw operationInProgress(active);
  await db.deleteFrom('environments').where('id', '=', id).execute();
}

/** For an agent: an environment it may run: placed on its server, or being restored onto it. */
export async function environmentForServer(
  db: Db,
  serverId: string,
  id: string,
): Promise<Environment | undefined> {
  return db
    .selectFrom('environments')
    .selectAll()
    .where('id', '=', id)
    .where((eb) =>
      eb.or([
        eb('server_id', '=', serverId),
        // The target of a restore under way runs the environment before it officially moves there.
        eb.exists(
          eb
            .selectFrom('restores')
            .innerJoin('operations', 'operations.id', 'restores.operation_id')
            .select('restores.operation_id')
            .whereRef('restores.environment_id', '=', 'environments.id')
            .where('restores.target_server_id', '=', serverId)
            .where('operations.status', 'in', activeStatuses),
        ),
      ]),
    )
    .executeTakeFirst();
}

/**
 * The names an operation on this environment is known by in the Temporal UI; on `serverId` when it
 * runs elsewhere (a restore's target, a verification's reader), else on the environment's own server.
 */
export async function operationLabels(
  db: Db,
  environmentId: string,
  serverId?: string,
): Promise<OperationLabels & { serverId: string }> {
  const row = await db
    .selectFrom('environments')
    .innerJoin('servers', (join) =>
      serverId
        ? join.on('servers.id', '=', serverId)
        : join.onRef('servers.id', '=', 'environments.server_id'),
    )
    .select(['environments.name as environmentName', 'servers.name as serverName', 'servers.id as serverId'])
    .where('environments.id', '=', environmentId)
    .executeTakeFirst();
  if (!row) throw notFound('environment', environmentId);
  return row;
}
