import { setTimeout as sleep } from 'node:timers/promises';
import type { FleetTeam } from './fleet.ts';

export type PolledRoute = 'backups overview' | 'operations list' | 'operation events, first byte';

/** Milliseconds per request, by route; failed requests (not 200) counted apart. */
export interface PollFigures {
  latencies: Record<PolledRoute, number[]>;
  failures: Record<PolledRoute, number>;
}

/**
 * What people watching their backups ask the API, as `pages` open pages would: each, every
 * `everyMs`, a random environment's backups overview, its team's operations (first page), and the
 * event stream of the team's newest operation up to its first byte. Runs until `stop` aborts.
 */
export async function pollApi(
  apiUrl: string,
  teams: FleetTeam[],
  { pages, everyMs, stop }: { pages: number; everyMs: number; stop: AbortSignal },
): Promise<PollFigures> {
  const figures: PollFigures = {
    latencies: { 'backups overview': [], 'operations list': [], 'operation events, first byte': [] },
    failures: { 'backups overview': 0, 'operations list': 0, 'operation events, first byte': 0 },
  };

  async function timed(route: PolledRoute, token: string, path: string, firstByteOnly = false) {
    const started = performance.now();
    const aborted = new AbortController();
    try {
      const res = await fetch(new URL(path, apiUrl), {
        headers: { authorization: `Bearer ${token}` },
        signal: aborted.signal,
      });
      const reader = res.body!.getReader();
      if (firstByteOnly) await reader.read();
      else while (!(await reader.read()).done);
      const took = performance.now() - started;
      if (res.status === 200) figures.latencies[route].push(took);
      else figures.failures[route]++;
      return res.status === 200;
    } catch {
      figures.failures[route]++;
      return false;
    } finally {
      aborted.abort(); // an open event stream ends here: only its first byte was wanted
    }
  }

  const newestOperation = async (team: FleetTeam) => {
    const res = await fetch(new URL('/operations?limit=1', apiUrl), {
      headers: { authorization: `Bearer ${team.token}` },
    });
    return ((await res.json()) as { operations: { id: string }[] }).operations[0]?.id;
  };

  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  await Promise.all(
    Array.from({ length: pages }, async (_, p) => {
      // Pages do not all ask at the same instant.
      await sleep((everyMs * p) / pages, undefined, { signal: stop }).catch(() => undefined);
      while (!stop.aborted) {
        const team = pick(teams);
        const env = pick(team.environmentIds);
        await timed('backups overview', team.token, `/environments/${env}/backups`);
        await timed('operations list', team.token, '/operations');
        const op = await newestOperation(team).catch(() => undefined);
        if (op) await timed('operation events, first byte', team.token, `/operations/${op}/events`, true);
        await sleep(everyMs, undefined, { signal: stop }).catch(() => undefined);
      }
    }),
  );
  return figures;
}
