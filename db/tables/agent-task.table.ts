import type { Generated, Selectable } from 'kysely';

/** A host step handed to a server's agent; the task token never leaves the control plane. */
export interface AgentTaskTable {
  id: string;
  server_id: string;
  activity: string;
  input: unknown;
  task_token: Buffer;
  workflow_id: string;
  activity_id: string;
  attempt: number;
  created_at: Generated<Date>;
  claimed_at: Date | null;
}
export type AgentTask = Selectable<AgentTaskTable>;
