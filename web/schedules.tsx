import { Link } from './router.tsx';
import type { Destination, Schedule } from './types.ts';

/** An environment's schedules in words, each with a link to change it, and one to add another. */
export function Schedules({
  envId,
  schedules,
  destinations,
}: {
  envId: string;
  schedules: Schedule[];
  destinations: Map<string, Destination>;
}) {
  return (
    <section aria-labelledby="schedules">
      <h2 id="schedules">Schedules</h2>
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
              </Link>
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
