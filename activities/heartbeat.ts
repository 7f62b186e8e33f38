import { Context } from '@temporalio/activity';

// Well inside any heartbeat timeout; the SDK sends at most one per 80% of that timeout anyway.
const everyMs = 2_000;

/**
 * Runs `work` while telling Temporal, every few seconds, that this worker is still at it: a worker that
 * dies under it is then noticed within the activity's heartbeat timeout, not its whole start-to-close.
 */
export async function heartbeatWhile<T>(work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat();
  const beat = setInterval(() => context.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}
