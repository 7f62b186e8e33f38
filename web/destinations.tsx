import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { DestinationForm } from './destination-form.tsx';
import { relative, when } from './format.ts';
import { KeyCheck, NewKeyPanel } from './team-key.tsx';
import type { DestinationDetail, NewTeamKey, Page, Team } from './types.ts';
import { Pending, Title, useLoad } from './ui.tsx';

async function loadDestinations() {
  const [{ destinations }, team] = await Promise.all([
    api<Page<'destinations', DestinationDetail>>('GET', '/destinations?limit=200'),
    api<Team>('GET', '/team'),
  ]);
  return { destinations, team };
}

const where = (d: DestinationDetail) =>
  d.kind === 'receiver'
    ? `receiver ${d.receiver?.url ?? ''}`
    : `bucket ${d.bucket}${d.prefix ? `/${d.prefix}` : ''} at ${d.endpoint ?? 'AWS S3'}`;

function CheckAgain({ destination, checked }: { destination: DestinationDetail; checked: () => void }) {
  const [answer, setAnswer] = useState<{ ok: boolean; text: string }>();
  return (
    <>
      <button
        type="button"
        class="link"
        onClick={async () => {
          setAnswer(undefined);
          try {
            await api('POST', `/destinations/${destination.id}/check`);
            setAnswer({ ok: true, text: 'works' });
            checked();
          } catch (err) {
            setAnswer({ ok: false, text: err instanceof ApiError ? err.message : String(err) });
          }
        }}
      >
        Check again<span class="visually-hidden"> {destination.name}</span>
      </button>
      <span role="status" class={answer?.ok ? 'good' : 'error'}>
        {answer && ` ${answer.text}`}
      </span>
    </>
  );
}

/**
 * Deletes a destination once the reader confirms. The API refuses while a schedule sends backups there
 * or snapshots are kept there, and says which: that answer is shown beside the button.
 */
function DeleteDestination({
  destination,
  deleted,
}: {
  destination: DestinationDetail;
  deleted: () => void;
}) {
  const [refusal, setRefusal] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <>
      <button
        type="button"
        class="link danger"
        disabled={busy}
        onClick={async () => {
          if (!confirm(`Delete the destination ${destination.name}? strackt forgets its credentials.`))
            return;
          setBusy(true);
          setRefusal(undefined);
          try {
            await api('DELETE', `/destinations/${destination.id}`);
            deleted();
          } catch (err) {
            setRefusal(err instanceof ApiError ? err.message : String(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        Delete<span class="visually-hidden"> {destination.name}</span>
      </button>
      {refusal && (
        <p role="alert" class="error">
          {refusal}
        </p>
      )}
    </>
  );
}

/** The team's destinations, adding one (checked first), and the team key: shown once, then checkable. */
export function DestinationsView() {
  const { data, error, reload } = useLoad(loadDestinations, []);
  const [newKey, setNewKey] = useState<NewTeamKey>();
  if (!data)
    return (
      <>
        <Title>Destinations</Title>
        <Pending error={error} />
      </>
    );
  const { destinations, team } = data;
  return (
    <>
      <Title>Destinations</Title>
      {newKey && <NewKeyPanel teamKey={newKey} onDone={() => setNewKey(undefined)} />}
      {destinations.length === 0 ? (
        <p>No destination yet: add the bucket or receiver backups go to.</p>
      ) : (
        <ul class="cards">
          {destinations.map((d) => (
            <li class="card">
              <h2>{d.name}</h2>
              <p>{where(d)}</p>
              <p class="muted">
                {d.lastCheckedAt ? (
                  <>
                    last shown to work <time dateTime={d.lastCheckedAt}>{relative(d.lastCheckedAt)}</time>
                  </>
                ) : (
                  'never checked'
                )}
              </p>
              <div class="row-actions">
                <CheckAgain destination={d} checked={reload} />
                <DeleteDestination destination={d} deleted={reload} />
              </div>
            </li>
          ))}
        </ul>
      )}
      <section aria-labelledby="team-key">
        <h2 id="team-key">Team key</h2>
        {team.key ? (
          <>
            <p>
              Backups are encrypted to the team key made{' '}
              <time dateTime={team.key.createdAt}>{when(team.key.createdAt)}</time>, fingerprint{' '}
              <code class="fingerprint">{team.key.fingerprint}</code>. Its secret half was shown once, when it
              was made; strackt never shows it again.
            </p>
            <KeyCheck fingerprint={team.key.fingerprint} />
          </>
        ) : (
          <p>No key yet: it is made with the team’s first destination, and shown that once.</p>
        )}
      </section>
      <DestinationForm
        onCreated={(created) => {
          if (created.teamKey) setNewKey(created.teamKey);
          reload();
        }}
      />
    </>
  );
}
