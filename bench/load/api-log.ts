import type { PolledRoute } from './api-poller.ts';

// The polled routes as the API logs them (its access line has the path, never the query).
const routes: [PolledRoute, RegExp][] = [
  ['backups overview', /^\/environments\/[^/]+\/backups$/],
  ['operations list', /^\/operations$/],
];

/**
 * The API's own time per request of the polled routes, from its access lines (api/request-log.ts):
 * the handler's time alone, without the client's wait for a core on a busy machine. An event
 * stream's line says how long it stayed open, not its first byte, so it is left out.
 */
export function apiHandlerTimes(log: string): Partial<Record<PolledRoute, number[]>> {
  const times: Partial<Record<PolledRoute, number[]>> = {};
  for (const line of log.split('\n')) {
    if (!line.includes('"ms":')) continue;
    let entry: { method?: string; path?: string; status?: number; ms?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (entry.method !== 'GET' || entry.status !== 200 || entry.ms === undefined) continue;
    const route = routes.find(([, pattern]) => pattern.test(entry.path ?? ''))?.[0];
    if (route) (times[route] ??= []).push(entry.ms);
  }
  return times;
}
