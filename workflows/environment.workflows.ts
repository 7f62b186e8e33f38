import type { OperationInput } from '../common/workflow-contracts.ts';
import { agentActivities } from './agent-activities.ts';
import { OperationTracker } from './operation-tracker.ts';

// Workflow names live in histories and schedules: never rename these functions.

export async function deployEnvironment(input: OperationInput): Promise<void> {
  const tracker = new OperationTracker(input.operationId, ['start services', 'health check']);
  const agent = agentActivities(input.serverId);
  await tracker.run(async () => {
    await tracker.step('start services', () =>
      agent.startEnvironment({ environmentId: input.environmentId }),
    );
    await tracker.step('health check', () => agent.waitHealthy({ environmentId: input.environmentId }));
  });
}

export async function stopEnvironment(input: OperationInput): Promise<void> {
  const tracker = new OperationTracker(input.operationId, ['stop services']);
  const agent = agentActivities(input.serverId);
  await tracker.run(() =>
    tracker.step('stop services', () => agent.stopEnvironment({ environmentId: input.environmentId })),
  );
}
