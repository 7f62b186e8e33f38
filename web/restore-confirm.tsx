import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { bytes, duration, rate, when } from './format.ts';
import { estimate, restoreHistory, type RestoreEstimate } from './restore-estimate.ts';
import { navigate } from './router.tsx';
import type { Environment, Operation, Server, Snapshot } from './types.ts';
import { Title, useLoad } from './ui.tsx';

function ExpectedDowntime({ expected }: { expected: RestoreEstimate | undefined }) {
  const down = expected?.downtime;
  const whose =
    down?.scope === 'environment' ? 'of this environment' : 'of the team (none of this environment yet)';
  return (
    <p class="expected-downtime">
      <strong>Expected downtime:</strong>{' '}
      {!expected ? (
        'working it out from past restores…'
      ) : down ? (
        <>
          about {duration(down.typicalMs)}
          {down.count > 1 && `, at most ${duration(down.maxMs)} so far`}, from the stop until the health
          checks pass (
          {down.count === 1
            ? `measured on the last restore ${whose}`
            : `the median of the last ${down.count} restores ${whose}`}
          ).
        </>
      ) : (
        'no restore of this team has been measured yet: from the stop until healthy it is a few seconds plus the services’ start.'
      )}{' '}
      The snapshot’s size does not add to it: its data is in place before the stop
      {expected?.prepare
        ? `, which comes after about ${duration(expected.prepare.ms)} of fetching and unpacking (at the ${rate(expected.prepare.rate)} past restores read)`
        : ''}
      . If anything fails, or you cancel, the previous data and services are put back.
    </p>
  );
}

/** What a restore will do, and how long the services will be down, before it starts. */
export function RestoreConfirm({
  env,
  snapshot,
  target,
  current,
  onBack,
}: {
  env: Environment;
  snapshot: Snapshot;
  target: Server;
  current: string;
  onBack: () => void;
}) {
  const { data: history, error } = useLoad(() => restoreHistory(env.id), [env.id]);
  const [failure, setFailure] = useState<string>();
  const [busy, setBusy] = useState(false);
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
            The services of {env.name} are stopped on <strong>{current}</strong>.
          </li>
          <li>
            The data is swapped in and the services start on <strong>{target.name}</strong>, until their
            health checks pass.
          </li>
        </ol>
        {/* Past restores unreadable: said as for a team with none, rather than waited for. */}
        <ExpectedDowntime
          expected={history ? estimate(history, snapshot.sizeBytes) : error ? {} : undefined}
        />
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
        <button type="button" class="secondary" onClick={onBack}>
          Back
        </button>
      </div>
    </>
  );
}
