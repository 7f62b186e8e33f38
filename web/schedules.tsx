import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { Link } from './router.tsx';
import type { Destination, Schedule } from './types.ts';

/** Pauses a running schedule or resumes a paused one; the list is loaded again once the API has it. */
function PauseOrResume({
  schedule,
  changed,
  failed,
}: {
  schedule: Schedule;
  changed: () => void;
  failed: (message: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const action = schedule.enabled ? 'pause' : 'resume';
  return (
    <button
      type="button"
      class="link"
      disabled={busy}
      onClick={async () => {
        setBusy(true);
        try {
          await api('POST', `/schedules/${schedule.id}/${action}`);
          changed();
        } catch (err) {
          failed(err instanceof ApiError ? err.message : String(err));
        } finally {
          setBusy(false);
        }
      }}
    >
      {schedule.enabled ? 'Pause' : 'Resume'}
      <span class="visually-hidden"> the schedule {schedule.cron}</span>
    </button>
  );
}

/** An environment's schedules in words, each to change, pause or resume, and a link to add another. */
export function Schedules({
  envId,
  schedules,
  destinations,
  changed,
}: {
  envId: string;
  schedules: Schedule[];
  destinations: Map<string, Destination>;
  changed: () => void;
}) {
  const [error, setError] = useState<string>();
  return (
    <section aria-labelledby="schedules">
      <h2 id="schedules">Schedules</h2>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {schedules.length === 0 ? (
        <p>No schedule: backups run only when started.</p>
      ) : (
        <ul class="plain schedule-list">
          {schedules.map((s) => (
            <li>
              <code>{s.cron}</code> in {s.timezone} to{' '}
              {destinations.get(s.destinationId)?.name ?? s.destinationId}
              {s.enabled ? '' : ' (paused)'}; {s.retentionInWords}.{' '}
              <Link href={`/app/environments/${envId}/schedules/${s.id}`}>
                Change<span class="visually-hidden"> the schedule {s.cron}</span>
              </Link>{' '}
              <PauseOrResume
                schedule={s}
                changed={() => {
                  setError(undefined);
                  changed();
                }}
                failed={setError}
              />
            </li>
          ))}
        </ul>
      )}
      <p>
        <Link href={`/app/environments/${envId}/schedules/new`}>Add a schedule</Link>
      </p>
    </section>
  );
}
