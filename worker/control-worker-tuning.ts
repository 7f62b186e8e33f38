import type { WorkerOptions } from '@temporalio/worker';

/**
 * How the control-plane worker takes its tasks, measured with bench:load (a thousand environments on
 * 15-minute schedules: each minute a burst of dozens of runs, each three workflows):
 * - Pollers that scale with the backlog: the fixed default (two pollers on the shared queue for new
 *   workflows) left each burst's first workflow tasks waiting seconds to be picked up.
 * - Two workflow threads: every call into a workflow's sandbox starts a watchdog thread for its
 *   time limit (Node's vm timeout, ~0.15 ms a call here, several calls per activation), and in a
 *   burst that alone kept the one workflow thread busy for seconds; two spread it over both cores.
 * - Workflow task slots for a whole burst: a scheduled run's first task holds its slot while its
 *   local activities run, and with the default 40 the rest of a 67-run burst waited in the queue.
 */
export const controlWorkerTuning = {
  workflowTaskPollerBehavior: { type: 'autoscaling' },
  activityTaskPollerBehavior: { type: 'autoscaling' },
  workflowThreadPoolSize: 2,
  maxConcurrentWorkflowTaskExecutions: 100,
} satisfies Partial<WorkerOptions>;
