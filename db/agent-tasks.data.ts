import { sql } from 'kysely';
import { newId } from '../common/ids.ts';
import type { Db } from './database.ts';
import { jsonb } from './jsonb.ts';
import type { AgentTask } from './tables/agent-task.table.ts';

/** The channel a new task is announced on, with its server's id as payload (db/agent-task-signals.ts). */
export const agentTaskChannel = 'strackt_agent_tasks';

export interface NewAgentTask {
  serverId: string;
  activity: string;
  input: unknown;
  taskToken: Uint8Array;
  workflowId: string;
  activityId: string;
  attempt: number;
}

/**
 * Records a host step for its server's agent and wakes the API processes holding that agent's poll.
 * A retry replaces the attempt before it, whose token Temporal no longer accepts anyway.
 */
export async function enqueueAgentTask(db: Db, task: NewAgentTask): Promise<string> {
  const id = newId('task');
  await db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('agent_tasks')
      .where('workflow_id', '=', task.workflowId)
      .where('activity_id', '=', task.activityId)
      .execute();
    await trx
      .insertInto('agent_tasks')
      .values({
        id,
        server_id: task.serverId,
        activity: task.activity,
        input: jsonb(task.input),
        task_token: Buffer.from(task.taskToken),
        workflow_id: task.workflowId,
        activity_id: task.activityId,
        attempt: task.attempt,
        claimed_at: null,
      })
      .execute();
    // Delivered on commit, so a woken poll always finds the row.
    await sql`select pg_notify(${agentTaskChannel}, ${task.serverId})`.execute(trx);
  });
  return id;
}

export type ClaimedTask = Pick<AgentTask, 'id' | 'activity' | 'input' | 'attempt' | 'task_token'>;

/** Hands the oldest waiting task of a server to its agent, once: concurrent polls never get the same one. */
export async function claimAgentTask(db: Db, serverId: string): Promise<ClaimedTask | undefined> {
  return db
    .updateTable('agent_tasks')
    .set({ claimed_at: new Date() })
    .where(
      'id',
      '=',
      db
        .selectFrom('agent_tasks')
        .select('id')
        .where('server_id', '=', serverId)
        .where('claimed_at', 'is', null)
        .orderBy('created_at')
        .limit(1)
        .forUpdate()
        .skipLocked(),
    )
    .returning(['id', 'activity', 'input', 'attempt', 'task_token'])
    .executeTakeFirst();
}

/** A claimed task of this server, with its token; another server's task is not found. */
export async function claimedTaskOfServer(
  db: Db,
  serverId: string,
  taskId: string,
): Promise<Pick<AgentTask, 'id' | 'activity' | 'task_token' | 'workflow_id'> | undefined> {
  return db
    .selectFrom('agent_tasks')
    .select(['id', 'activity', 'task_token', 'workflow_id'])
    .where('id', '=', taskId)
    .where('server_id', '=', serverId)
    .where('claimed_at', 'is not', null)
    .executeTakeFirst();
}

export async function deleteAgentTask(db: Db, taskId: string): Promise<void> {
  await db.deleteFrom('agent_tasks').where('id', '=', taskId).execute();
}

/** Puts a claimed task back for the next poll (it could not be confirmed with Temporal). */
export async function releaseAgentTask(db: Db, taskId: string): Promise<void> {
  await db.updateTable('agent_tasks').set({ claimed_at: null }).where('id', '=', taskId).execute();
}
