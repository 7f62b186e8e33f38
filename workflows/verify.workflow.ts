import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { VerifyActivities } from '../activities/verify.activities.ts';
import type { VerificationOutcome, VerifyInput } from '../common/workflow-contracts.ts';
import { agentActivities } from './agent-activities.ts';
import { failureMessage, OperationTracker } from './operation-tracker.ts';

const control = proxyActivities<VerifyActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', maximumAttempts: 10 },
});

export const verifySteps = ['check the stored objects', 'stream and verify', 'record the result'];

/** A failure that says the snapshot is bad (as opposed to an agent or storage away for a while). */
function snapshotAtFault(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return (
    cause instanceof ApplicationFailure &&
    ['SnapshotCorrupt', 'WrongKey', 'SnapshotMissing'].includes(cause.type ?? '')
  );
}

/**
 * Verifies a stored snapshot on a server of the team: the control plane checks both objects are
 * there and whole and seals the data key to that server's agent, which streams the snapshot from the
 * destination and checks all of it without writing a file. The result is recorded on the snapshot
 * ("last verified"); a bad one is marked, notified, and no longer the default restore point. The
 * operation fails when the snapshot does.
 */
// Workflow names live in histories and schedules: never rename this function.
export async function verifySnapshot(input: VerifyInput): Promise<VerificationOutcome> {
  const tracker = new OperationTracker(input.operationId, verifySteps);
  const host = agentActivities(input.serverId);
  const ref = { operationId: input.operationId, environmentId: input.environmentId };
  // An activity's input is not compared on replay: histories started before `subset` existed replay as they ran.
  const subset = input.subset === undefined ? {} : { subset: input.subset };

  return tracker.run(async () => {
    let outcome: VerificationOutcome | undefined;
    try {
      await tracker.step('check the stored objects', async () => {
        const prepared = await control.prepareVerification(input);
        if (prepared.outcome && prepared.outcome.result !== 'ok') {
          outcome = prepared.outcome;
          throw ApplicationFailure.nonRetryable(
            prepared.outcome.error,
            prepared.outcome.result === 'missing' ? 'SnapshotMissing' : 'SnapshotCorrupt',
          );
        }
      });
      const checked = await tracker.step(
        'stream and verify',
        () => host.verifySnapshotOnHost({ ...ref, ...subset }),
        (r) => r.bytes,
        (r) => `${r.entries} entries checked`,
      );
      outcome = { result: 'ok', ...checked };
    } catch (err) {
      // Only a verdict on the snapshot is recorded; an agent or storage away is retried or fails the operation alone.
      if (!snapshotAtFault(err)) throw err;
      outcome ??= { result: 'failed', error: failureMessage(err) };
    }
    const verdict = outcome;
    await tracker.step('record the result', () => control.recordVerification({ ...input, outcome: verdict }));
    if (verdict.result !== 'ok')
      throw ApplicationFailure.nonRetryable(
        `snapshot ${input.snapshotId} ${verdict.result === 'missing' ? 'is missing' : 'failed verification'}: ${verdict.error}`,
        'SnapshotBad',
      );
    return verdict;
  });
}
