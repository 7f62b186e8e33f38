import { api } from './api.ts';
import type { Destination, Page, Server } from './types.ts';

/** The team's servers and destinations by id, to name them wherever the API gives an id. */
export async function teamNames() {
  const [servers, destinations] = await Promise.all([
    api<Page<'servers', Server>>('GET', '/servers?limit=200'),
    api<Page<'destinations', Destination>>('GET', '/destinations?limit=200'),
  ]);
  return {
    servers: new Map(servers.servers.map((s) => [s.id, s])),
    destinations: new Map(destinations.destinations.map((d) => [d.id, d])),
  };
}
