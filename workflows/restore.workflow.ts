import { ApplicationFailure, CancellationScope, proxyActivities } from '@temporalio/workflow';
import type { RestoreActivities } from '../activities/restore.activities.ts';
import type { RestoreInput, RestoreResult } from '../common/workflow-contracts.ts';
import { agentActivities } from './agent-activities.ts';
import { failureMessage, OperationTracker } from './operation-tracker.ts';

const control = proxyActivities<RestoreActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', maximumAttempts: 10 },
});

export const restoreSteps = [
  'preflight',
  'fetch, verify and unpack',
  'stop services',
  'swap data',
  'redeploy',
  'health check',
  'commit',
];

/**
 * Stage first, stop last: the snapshot is fetched, verified and unpacked while the services still
 * run, so the downtime is stop + two renames + start, whatever the snapshot's size. From the stop on,
 * every step registers its undo before it runs; on failure or cancellation the undos run in reverse,
 * shielded from the cancellation.
 */
// Workflow names live in histories and schedules: never rename this function.
export async function restoreEnvironment(input: RestoreInput): Promise<RestoreResult> {
  const tracker = new OperationTracker(input.operationId, restoreSteps);
  const target = agentActivities(input.serverId);
  const ref = { operationId: input.operationId, environmentId: input.environmentId };
  const undo: (() => Promise<unknown>)[] = [];
  let committed = false;
  let downtimeMs: number | null = null;

  return tracker.run(async () => {
    try {
      const prepared = await tracker.step('preflight', async () => {
        const p = await control.prepareRestore({
          operationId: input.operationId,
          teamId: input.teamId,
          environmentId: input.environmentId,
          serverId: input.serverId,
          snapshotId: input.snapshotId,
        });
        await target.preflightRestore(ref);
        return p;
      });

      undo.push(() => target.discardRestore(ref));
      await tracker.step(
        'fetch, verify and unpack',
        () => target.fetchAndUnpack(ref),
        (r) => r.bytes,
      );

      // Stopped where it ran, so it never runs twice: on the target and, when the environment moves,
      // on the server it ran on (its data stays there).
      const elsewhere = prepared.stopOnServerId ? agentActivities(prepared.stopOnServerId) : undefined;
      const ran = { target: false, elsewhere: false };
      undo.push(async () => {
        if (ran.elsewhere && elsewhere) {
          await elsewhere.startEnvironment({ environmentId: input.environmentId });
          await elsewhere.waitHealthy({ environmentId: input.environmentId });
        }
        if (ran.target) {
          await target.startEnvironment({ environmentId: input.environmentId });
          await target.waitHealthy({ environmentId: input.environmentId });
        }
      });
      const stoppingAt = await tracker.step('stop services', async () => {
        const stops = [];
        if (elsewhere) {
          // Marked as running until proven otherwise: a stop that fails half-way is undone too.
          ran.elsewhere = true;
          const s = await elsewhere.stopEnvironment({ environmentId: input.environmentId });
          ran.elsewhere = s.wasRunning;
          stops.push(s.stoppingAt);
        }
        ran.target = true;
        const s = await target.stopEnvironment({ environmentId: input.environmentId });
        ran.target = s.wasRunning;
        stops.push(s.stoppingAt);
        return Math.min(...stops);
      });

      undo.push(() => target.swapBack(ref));
      await tracker.step('swap data', () => target.swapIn(ref));

      undo.push(() => target.stopEnvironment({ environmentId: input.environmentId }));
      await tracker.step('redeploy', () => target.startEnvironment({ environmentId: input.environmentId }));
      const { healthyAt } = await tracker.step('health check', () =>
        target.waitHealthy({ environmentId: input.environmentId }),
      );
      downtimeMs = healthyAt - stoppingAt;

      await tracker.step('commit', async () => {
        await control.closeRestore({ operationId: input.operationId, committed: true, downtimeMs });
        committed = true;
        // Only tidying (older restores' leftovers): the restore itself is done and stays done.
        await target.finishRestore(ref).catch(() => undefined);
      });
      return { downtimeMs };
    } catch (err) {
      if (committed) throw err;
      const undoFailures: string[] = [];
      await CancellationScope.nonCancellable(async () => {
        // Every undo is tried, even after one fails: each puts back something different.
        for (const step of undo.reverse()) {
          await step().catch((e: unknown) => undoFailures.push(failureMessage(e)));
        }
        await control.closeRestore({ operationId: input.operationId, committed: false, downtimeMs });
      });
      if (undoFailures.length) {
        throw ApplicationFailure.nonRetryable(
          `${failureMessage(err)}; undoing the restore also failed: ${undoFailures.join('; ')}`,
          'CompensationFailed',
        );
      }
      throw err;
    }
  });
}
