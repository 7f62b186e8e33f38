import { api } from './api.ts';
import type { Operation, Page } from './types.ts';

// What a restore's confirm expects, from restores that already ran (chosen over a formula: stopping
// and starting depend on the services, which only a measure knows). The downtime runs from the stop
// to healthy, after the snapshot is fetched, verified and unpacked with the services still up, so
// the snapshot's size adds to the wait before the stop and not to the downtime.

const fetchStep = 'fetch, verify and unpack';
// Recent ones tell the services' current start time; a few smooth out one slow run.
const considered = 5;

export interface PastRestore {
  downtimeMs: number;
  /** Bytes per second of its fetch, verify and unpack step, when it moved any. */
  rate?: number;
}

export interface RestoreHistory {
  /** Whose restores were measured: this environment's, or, for a first restore, the team's. */
  scope: 'environment' | 'team';
  restores: PastRestore[];
}

function pastRestore(op: Operation): PastRestore | undefined {
  const downtimeMs = op.restore?.downtimeMs;
  if (downtimeMs == null) return undefined;
  const step = op.steps.find((s) => s.name === fetchStep);
  const seconds =
    step?.startedAt && step.endedAt ? (Date.parse(step.endedAt) - Date.parse(step.startedAt)) / 1000 : 0;
  return { downtimeMs, ...(step?.bytes && seconds > 0 && { rate: step.bytes / seconds }) };
}

async function measured(filter: Record<string, string>): Promise<PastRestore[]> {
  const query = new URLSearchParams({
    kind: 'restore',
    status: 'succeeded',
    limit: String(considered),
    ...filter,
  });
  const { operations } = await api<Page<'operations', Operation>>('GET', `/operations?${query}`);
  // The list leaves out a restore's measures: each is read whole.
  const whole = await Promise.all(operations.map((op) => api<Operation>('GET', `/operations/${op.id}`)));
  return whole.map(pastRestore).filter((r) => r !== undefined);
}

export async function restoreHistory(envId: string): Promise<RestoreHistory> {
  const own = await measured({ environmentId: envId });
  return own.length
    ? { scope: 'environment', restores: own }
    : { scope: 'team', restores: await measured({}) };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export interface RestoreEstimate {
  downtime?: { typicalMs: number; maxMs: number; count: number; scope: RestoreHistory['scope'] };
  /** Before the stop: the snapshot's bytes at the median rate past restores read theirs. */
  prepare?: { ms: number; rate: number };
}

export function estimate(history: RestoreHistory, sizeBytes: number): RestoreEstimate {
  const downtimes = history.restores.map((r) => r.downtimeMs);
  const rates = history.restores.flatMap((r) => (r.rate ? [r.rate] : []));
  return {
    ...(downtimes.length && {
      downtime: {
        typicalMs: median(downtimes),
        maxMs: Math.max(...downtimes),
        count: downtimes.length,
        scope: history.scope,
      },
    }),
    ...(rates.length && { prepare: { ms: (sizeBytes / median(rates)) * 1000, rate: median(rates) } }),
  };
}
