import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTeam } from '../../db/teams.data.ts';
import type { ControlPlanePrograms } from '../../tests/helpers/control-plane-programs.ts';
import { startAgent, type ProgramRun } from '../../tests/helpers/processes.ts';
import { stack, uniqueName } from '../../tests/helpers/stack.ts';

/** One agent's share of the fleet: a team of its own, one server, a bucket, and its environments. */
export interface FleetTeam {
  token: string;
  serverId: string;
  destinationId: string;
  agent: ProgramRun;
  environmentIds: string[];
  scheduleIds: string[];
}

/**
 * The customers' side (agents, their buckets) runs only on cores the control plane leaves idle
 * (SCHED_IDLE): in production it is on the customers' machines, not the control plane's, which here
 * it shares. Nice 19 was not enough: in each minute's burst the agents still took over a core, and
 * the overview's and operations list's p99 were 103-220 ms against 37-49 ms under SCHED_IDLE (200
 * environments, same machine, same hour). Likely (not proven) because a request is a chain of
 * wake-ups (API, PostgreSQL, API), each of which may wait out a running agent's time slice.
 */
const customersSide = ['chrt', '--idle', '0'];

/** Puts a running process of the customers' side, all its threads, under SCHED_IDLE. */
export function runAsCustomersSide(pid: number) {
  execFileSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(pid)]);
}

/** Runs `fn` over `items`, at most `limit` at a time: setting up 1,000 environments one by one takes long. */
export async function eachLimited<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

function check<T>(what: string, answer: { status: number; body: T }, status: number): T {
  if (answer.status !== status) throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/**
 * Teams, servers with their agent processes, and environments with tiny volumes, through the API
 * (teams have no route: their rows are made directly). An environment is never deployed: a backup
 * reads its volume folders whether its services run or not, and `none` holds nothing still.
 */
export async function createFleet(
  cp: ControlPlanePrograms,
  { environments, perAgent }: { environments: number; perAgent: number },
): Promise<FleetTeam[]> {
  const agents = Math.ceil(environments / perAgent);
  const teams: FleetTeam[] = [];
  await eachLimited([...Array(agents).keys()], 4, async (a) => {
    const { token } = await createTeam(cp.db, uniqueName(`load-${a}`));
    const { destinationId } = await cp.addDestination(token);
    const created = check(
      'server',
      await cp.request<{ server: { id: string }; agent: { token: string } }>('POST', '/servers', token, {
        name: `load-${a}`,
      }),
      201,
    );
    const root = join(stack.runDir, 'agents', `agent-${a}`);
    const agent = startAgent(cp.apiUrl, created.agent.token, root, {}, customersSide);
    const team: FleetTeam = {
      token,
      serverId: created.server.id,
      destinationId,
      agent,
      environmentIds: [],
      scheduleIds: [],
    };
    teams[a] = team;
    await cp.connected(token, team.serverId);
    const count = Math.min(perAgent, environments - a * perAgent);
    for (let e = 0; e < count; e++) {
      const env = check(
        'environment',
        await cp.request<{ id: string }>('POST', '/environments', token, {
          name: `env-${e}`,
          serverId: team.serverId,
          backupStrategy: 'none',
          services: [{ name: 'app', command: 'exec sleep 3600', volumes: ['data'] }],
        }),
        201,
      );
      // A tiny volume: what is measured is the control plane, not tar and the network.
      const volume = join(root, 'volumes', env.id, 'data');
      await mkdir(volume, { recursive: true });
      await writeFile(join(volume, 'state.txt'), `environment ${env.id}\n`.repeat(64));
      team.environmentIds.push(env.id);
    }
  });
  return teams;
}

/**
 * A product schedule per environment: four runs an hour (the product's shortest interval), in UTC.
 * Environment g runs at minute `first + g % spread` of each quarter hour, so a run of a few minutes
 * still sees each of them once and the load is spread as many teams' schedules would be.
 */
export async function scheduleFleet(
  cp: ControlPlanePrograms,
  teams: FleetTeam[],
  { firstMinute, spread }: { firstMinute: number; spread: number },
): Promise<void> {
  const all = teams.flatMap((t) => t.environmentIds.map((id) => ({ team: t, id })));
  await eachLimited(all, 8, async ({ team, id }, g) => {
    const m = (firstMinute + (g % spread)) % 15;
    const schedule = check(
      'schedule',
      await cp.request<{ id: string }>('POST', `/environments/${id}/schedules`, team.token, {
        cron: `${m},${m + 15},${m + 30},${m + 45} * * * *`,
        timezone: 'UTC',
        destinationId: team.destinationId,
      }),
      201,
    );
    team.scheduleIds.push(schedule.id);
  });
}
