import { api } from './api.ts';
import { Overview } from './overview.tsx';
import { Link } from './router.tsx';
import { teamNames } from './team.ts';
import type { BackupsOverview, Environment, Page } from './types.ts';
import { Pending, Title, useLoad } from './ui.tsx';

async function loadEnvironments() {
  const [{ environments }, names] = await Promise.all([
    api<Page<'environments', Environment>>('GET', '/environments?limit=200'),
    teamNames(),
  ]);
  const overviews = await Promise.all(
    environments.map((e) => api<BackupsOverview>('GET', `/environments/${e.id}/backups`)),
  );
  return { environments: environments.map((e, i) => ({ env: e, overview: overviews[i]! })), ...names };
}

/** Every environment of the team, each with its backups at a glance. */
export function EnvironmentsView() {
  const { data, error } = useLoad(loadEnvironments, []);
  return (
    <>
      <Title>Environments</Title>
      {!data ? (
        <Pending error={error} />
      ) : data.environments.length === 0 ? (
        <p>No environments yet: create one through the API (POST /environments).</p>
      ) : (
        <ul class="cards">
          {data.environments.map(({ env, overview }) => (
            <li class="card">
              <h2>
                <Link href={`/app/environments/${env.id}`}>{env.name}</Link>
              </h2>
              <p class="muted">on {data.servers.get(env.serverId)?.name ?? env.serverId}</p>
              <Overview overview={overview} destinations={data.destinations} />
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
