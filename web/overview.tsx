import { bytes, relative, wallClock, when } from './format.ts';
import type { BackupsOverview, Destination } from './types.ts';

/** An environment's backups at a glance, as GET /environments/{id}/backups tells them. */
export function Overview({
  overview,
  destinations,
}: {
  overview: BackupsOverview;
  destinations: Map<string, Destination>;
}) {
  const last = overview.lastSuccessfulBackup;
  const next = overview.nextRuns[0];
  const missed = overview.missedRuns;
  return (
    <dl class="facts">
      <dt>Last successful backup</dt>
      <dd>
        {last ? (
          <>
            <time dateTime={last.at}>{when(last.at)}</time> ({relative(last.at)}), {bytes(last.sizeBytes)}
          </>
        ) : (
          'none yet'
        )}
      </dd>
      <dt>Next runs</dt>
      <dd>
        {next ? (
          <ul class="plain">
            {overview.nextRuns.slice(0, 3).map((run) => (
              <li>
                <time dateTime={run.at}>{when(run.at)}</time> (schedule’s zone: {wallClock(run.local)})
              </li>
            ))}
          </ul>
        ) : (
          'no schedule'
        )}
      </dd>
      <dt>Missed runs</dt>
      <dd>
        {missed.count === 0 ? (
          'none'
        ) : (
          <>
            <span class="warn">{missed.count}</span>
            <ul class="plain">
              {missed.latest.map((run) => (
                <li>
                  <time dateTime={run.nominalAt}>{when(run.nominalAt)}</time>: {run.status}
                  {run.reason ? `: ${run.reason}` : ''}
                </li>
              ))}
            </ul>
          </>
        )}
      </dd>
      <dt>Storage used</dt>
      <dd>
        {overview.storage.length === 0 ? (
          'nothing stored'
        ) : (
          <ul class="plain">
            {overview.storage.map((s) => (
              <li>
                {destinations.get(s.destinationId)?.name ?? s.destinationId}: {bytes(s.bytes)} in{' '}
                {s.snapshots} snapshot{s.snapshots === 1 ? '' : 's'}
              </li>
            ))}
          </ul>
        )}
      </dd>
      <dt>Retention</dt>
      <dd>
        {overview.schedules.length === 0 ? (
          'no schedule, so no rule: snapshots are kept until deleted'
        ) : (
          <ul class="plain">
            {overview.schedules.map((s) => (
              <li>
                {s.retentionInWords}
                {s.enabled ? '' : ' (schedule paused)'}
              </li>
            ))}
          </ul>
        )}
      </dd>
    </dl>
  );
}
