import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { bytes, relative, when } from './format.ts';
import { Link, navigate } from './router.tsx';
import { teamNames } from './team.ts';
import type { Environment, Operation, Page, Server, Snapshot } from './types.ts';
import { Pending, Title, useLoad } from './ui.tsx';

async function loadRestore(envId: string) {
  const [env, { snapshots }, names] = await Promise.all([
    api<Environment>('GET', `/environments/${envId}`),
    api<Page<'snapshots', Snapshot>>('GET', `/environments/${envId}/snapshots?limit=50`),
    teamNames(),
  ]);
  return { env, snapshots, ...names };
}

/** Why a server cannot take a restore now, or nothing when it can. */
const refusal = (s: Server) =>
  s.connected
    ? undefined
    : s.lastSeenAt
      ? `offline: its agent was last seen ${relative(s.lastSeenAt)}`
      : 'offline: its agent has never connected';

/** Restore: pick a snapshot, pick a connected server, read what will happen, then start it. */
export function RestoreView({ envId, snapshotId }: { envId: string; snapshotId: string | null }) {
  const { data, error } = useLoad(() => loadRestore(envId), [envId]);
  const [choice, setChoice] = useState<{ snapshotId: string; serverId: string }>();
  const [failure, setFailure] = useState<string>();
  const [busy, setBusy] = useState(false);
  if (!data)
    return (
      <>
        <Title>Restore</Title>
        <Pending error={error} />
      </>
    );
  const { env, snapshots, servers } = data;
  const current = servers.get(env.serverId);
  const snapshot = snapshots.find((s) => s.id === choice?.snapshotId);
  const target = choice && servers.get(choice.serverId);

  if (snapshot && target)
    return (
      <>
        <Title>{`Restore ${env.name}: confirm`}</Title>
        <section aria-labelledby="what-happens" class="card">
          <h2 id="what-happens">What will happen</h2>
          <ol>
            <li>
              The snapshot of <time dateTime={snapshot.createdAt}>{when(snapshot.createdAt)}</time> (
              {bytes(snapshot.sizeBytes)}) is fetched, verified and unpacked on <strong>{target.name}</strong>{' '}
              while the services still run.
            </li>
            <li>
              The services of {env.name} are stopped on <strong>{current?.name ?? env.serverId}</strong>.
            </li>
            <li>
              The data is swapped in and the services start on <strong>{target.name}</strong>, until their
              health checks pass.
            </li>
          </ol>
          <p>
            <strong>Expected downtime:</strong> from the stop until healthy: a few seconds plus the services’
            start, whatever the snapshot’s size. If anything fails, or you cancel, the previous data and
            services are put back.
          </p>
        </section>
        {failure && (
          <p role="alert" class="error">
            {failure}
          </p>
        )}
        <div class="actions">
          <button
            type="button"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setFailure(undefined);
              try {
                const op = await api<Operation>('POST', `/environments/${env.id}/restores`, {
                  snapshotId: snapshot.id,
                  targetServerId: target.id,
                });
                navigate(`/app/operations/${op.id}`);
              } catch (err) {
                setFailure(err instanceof ApiError ? err.message : String(err));
                setBusy(false);
              }
            }}
          >
            Restore now
          </button>
          <button type="button" class="secondary" onClick={() => setChoice(undefined)}>
            Back
          </button>
        </div>
      </>
    );

  const preferred = snapshotId ?? snapshots.find((s) => s.lastVerified?.result !== 'failed')?.id;
  return (
    <>
      <Title>{`Restore ${env.name}`}</Title>
      <p>
        <Link href={`/app/environments/${env.id}`}>Back to {env.name}</Link>
      </p>
      {snapshots.length === 0 ? (
        <p>No snapshots to restore from yet.</p>
      ) : (
        <form
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = new FormData(e.target as HTMLFormElement);
            setChoice({ snapshotId: form.get('snapshot') as string, serverId: form.get('server') as string });
          }}
        >
          <fieldset>
            <legend>Snapshot</legend>
            {snapshots.map((s) => (
              <div class="choice">
                <input
                  type="radio"
                  name="snapshot"
                  id={`snap-${s.id}`}
                  value={s.id}
                  required
                  checked={s.id === preferred}
                />
                <label for={`snap-${s.id}`}>
                  {when(s.createdAt)}, {bytes(s.sizeBytes)}
                  {s.lastVerified?.result === 'failed' ? ' (failed its last verification)' : ''}
                </label>
              </div>
            ))}
          </fieldset>
          <fieldset>
            <legend>Onto server</legend>
            {[...servers.values()].map((s) => {
              const reason = refusal(s);
              return (
                <div class="choice">
                  <input
                    type="radio"
                    name="server"
                    id={`srv-${s.id}`}
                    value={s.id}
                    required
                    disabled={!!reason}
                    checked={!reason && s.id === env.serverId}
                    aria-describedby={reason ? `srv-${s.id}-why` : undefined}
                  />
                  <label for={`srv-${s.id}`}>
                    {s.name}
                    {s.id === env.serverId ? ' (where it runs now)' : ''}
                  </label>
                  {reason && (
                    <span id={`srv-${s.id}-why`} class="muted">
                      {' '}
                      {reason}
                    </span>
                  )}
                </div>
              );
            })}
          </fieldset>
          <button type="submit">Review the restore</button>
        </form>
      )}
    </>
  );
}
