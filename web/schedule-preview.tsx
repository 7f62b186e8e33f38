import { useEffect, useRef, useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { viewerZone } from './schedule-form.ts';
import type { ScheduleBody, SchedulePreview } from './types.ts';

// Typing settles for this long before the preview is asked for: one request per pause, not per key.
const debounceMs = 350;

export interface PreviewState {
  preview?: SchedulePreview;
  error?: ApiError;
  pending: boolean;
}

/**
 * The API's preview of a schedule (its runs as Temporal will start them, and its warnings), asked for
 * again whenever the body changes, debounced. An answer overtaken by a later edit is dropped.
 */
export function useSchedulePreview(envId: string, body: ScheduleBody, count: number): PreviewState {
  const [state, setState] = useState<PreviewState>({ pending: true });
  const latest = useRef(0);
  const key = JSON.stringify([body, count]);
  useEffect(() => {
    const round = ++latest.current;
    setState((s) => ({ ...s, pending: true }));
    const timer = setTimeout(() => {
      api<SchedulePreview>('POST', `/environments/${envId}/schedules/preview?count=${count}`, body).then(
        (preview) => round === latest.current && setState({ preview, pending: false }),
        (error: Error) =>
          round === latest.current &&
          setState({
            error: error instanceof ApiError ? error : new ApiError(0, 'network', error.message),
            pending: false,
          }),
      );
    }, debounceMs);
    return () => clearTimeout(timer);
  }, [envId, key]);
  return state;
}

const inZone = (zone: string) =>
  new Intl.DateTimeFormat(undefined, {
    weekday: 'short',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone: zone,
    timeZoneName: 'shortOffset',
  });

/** The next runs in the schedule's zone and the viewer's, and the warnings, as the API previewed them. */
export function PreviewPanel({ state }: { state: PreviewState }) {
  const { preview, error, pending } = state;
  return (
    <section aria-labelledby="preview-heading" class="card preview">
      <h2 id="preview-heading">Before you save</h2>
      <p class="muted" aria-live="polite">
        {pending
          ? 'Updating the preview…'
          : error
            ? 'No preview: see the problem below.'
            : 'Preview up to date.'}
      </p>
      {error && (
        <p role="alert" class="error">
          {error.message}
        </p>
      )}
      {preview && (
        <>
          <div aria-live="polite" aria-atomic="true">
            {preview.warnings.length === 0 ? (
              <p>No clock change or day-matching surprise in these runs.</p>
            ) : (
              <ul class="warnings">
                {preview.warnings.map((w) => (
                  <li class="warn">{w}</li>
                ))}
              </ul>
            )}
          </div>
          <p class="muted">
            Runs <code>{preview.cron}</code>. {preview.overlapInWords}
          </p>
          <div class="scroll" tabIndex={0} role="region" aria-labelledby="runs-caption">
            <table>
              <caption id="runs-caption">Next {preview.runs.length} runs</caption>
              <thead>
                <tr>
                  <th scope="col">In {preview.timezone}</th>
                  <th scope="col">Your time ({viewerZone})</th>
                </tr>
              </thead>
              <tbody>
                {preview.runs.map((run) => (
                  <tr>
                    <td>
                      <time dateTime={run.local}>{inZone(preview.timezone).format(new Date(run.at))}</time>
                    </td>
                    <td>
                      <time dateTime={run.at}>{inZone(viewerZone).format(new Date(run.at))}</time>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
