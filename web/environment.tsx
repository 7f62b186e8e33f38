import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { bytes, duration, when } from './format.ts';
import { Overview } from './overview.tsx';
import { navigate } from './router.tsx';
import { SnapshotActions } from './snapshot-actions.tsx';
import { teamNames } from './team.ts';
import { Schedules } from './schedules.tsx';
import type {
  BackupsOverview,
  Destination,
  Environment,
  Operation,
  Page,
  Schedule,
  Snapshot,
} from './types.ts';
import { MoreButton, Pending, Title, useLoad, usePaged } from './ui.tsx';

async function loadEnvironment(id: string) {
  const [env, overview, { schedules }, names] = await Promise.all([
    api<Environment>('GET', `/environments/${id}`),
    api<BackupsOverview>('GET', `/environments/${id}/backups`),
    api<Page<'schedules', Schedule>>('GET', `/environments/${id}/schedules?limit=50`),
    teamNames(),
  ]);
  return { env, overview, schedules, ...names };
}

function verification(s: Snapshot): string {
  if (!s.lastVerified) return 'not verified';
  const { result, error } = s.lastVerified;
  return result === 'ok' ? `verified ${when(s.lastVerified.at)}` : `${result}${error ? `: ${error}` : ''}`;
}

/** Starts a backup to a chosen destination, then shows it live on its operation's view. */
function BackUpNow({ envId, destinations }: { envId: string; destinations: Destination[] }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  if (destinations.length === 0) return <p>Add a destination first: backups need somewhere to go.</p>;
  return (
    <form
      class="inline"
      onSubmit={async (e: Event) => {
        e.preventDefault();
        const destinationId = new FormData(e.target as HTMLFormElement).get('destinationId') as string;
        setBusy(true);
        setError(undefined);
        try {
          const op = await api<Operation>('POST', `/environments/${envId}/backups`, { destinationId });
          navigate(`/app/operations/${op.id}`);
        } catch (err) {
          setError(err instanceof ApiError ? err.message : String(err));
          setBusy(false);
        }
      }}
    >
      <label for="backup-destination">Destination</label>
      <select id="backup-destination" name="destinationId">
        {destinations.map((d) => (
          <option value={d.id}>{d.name}</option>
        ))}
      </select>
      <button type="submit" disabled={busy}>
        Back up now
      </button>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </form>
  );
}

/** One environment: its backups at a glance, a backup now, and its snapshots to restore from. */
export function EnvironmentView({ id }: { id: string }) {
  const { data, error, reload: reloadEnvironment } = useLoad(() => loadEnvironment(id), [id]);
  const paged = usePaged<Snapshot>('snapshots', `/environments/${encodeURIComponent(id)}/snapshots`);
  const [actionError, setActionError] = useState<string>();
  // A snapshot pinned or deleted changes the overview's figures too.
  const reload = () => {
    reloadEnvironment();
    paged.reload();
  };
  const snapshots = paged.items;
  if (!data)
    return (
      <>
        <Title>Environment</Title>
        <Pending error={error} />
      </>
    );
  const { env, overview, schedules, servers, destinations } = data;
  return (
    <>
      <Title>{env.name}</Title>
      <p class="muted">runs on {servers.get(env.serverId)?.name ?? env.serverId}</p>
      <section aria-labelledby="glance">
        <h2 id="glance">Backups at a glance</h2>
        <Overview overview={overview} destinations={destinations} />
        <BackUpNow envId={env.id} destinations={[...destinations.values()]} />
      </section>
      <Schedules
        envId={env.id}
        schedules={schedules}
        destinations={destinations}
        changed={reloadEnvironment}
      />
      <section aria-labelledby="snapshots">
        <h2 id="snapshots">Snapshots</h2>
        {actionError && (
          <p role="alert" class="error">
            {actionError}
          </p>
        )}
        {!snapshots ? (
          <Pending error={paged.error} />
        ) : snapshots.length === 0 ? (
          <p>No snapshots yet.</p>
        ) : (
          <div class="scroll" tabIndex={0} role="region" aria-labelledby="snapshots">
            <table>
              <thead>
                <tr>
                  <th scope="col">Taken</th>
                  <th scope="col">Size</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Held still</th>
                  <th scope="col">Verification</th>
                  <th scope="col">Pinned</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {snapshots.map((s) => (
                  <tr>
                    <th scope="row">
                      <time dateTime={s.createdAt}>{when(s.createdAt)}</time>
                    </th>
                    <td>{bytes(s.sizeBytes)}</td>
                    <td>{duration(s.captureMs)}</td>
                    <td>{duration(s.frozenMs)}</td>
                    <td>{verification(s)}</td>
                    <td>{s.pinned ? 'pinned' : 'no'}</td>
                    <td>
                      <SnapshotActions envId={env.id} snapshot={s} changed={reload} failed={setActionError} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <MoreButton paged={paged} what="snapshots" />
      </section>
    </>
  );
}
