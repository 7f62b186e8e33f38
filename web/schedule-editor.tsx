import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { Link, navigate } from './router.tsx';
import { PreviewPanel, useSchedulePreview } from './schedule-preview.tsx';
import { ScheduleWhen } from './schedule-when.tsx';
import { bodyOf, initialValues, retentionKinds, valuesOf, type FormValues } from './schedule-form.ts';
import { teamNames } from './team.ts';
import type { Destination, Environment, Schedule } from './types.ts';
import { FieldError, Pending, Title, useLoad } from './ui.tsx';

async function loadEditor(envId: string, scheduleId: string | undefined) {
  const [env, names, schedule] = await Promise.all([
    api<Environment>('GET', `/environments/${envId}`),
    teamNames(),
    scheduleId ? api<Schedule>('GET', `/schedules/${scheduleId}`) : undefined,
  ]);
  return { env, destinations: [...names.destinations.values()], schedule };
}

/** A new schedule, or a saved one to change: the form, with the API's preview beside it as one types. */
export function ScheduleEditorView({ envId, scheduleId }: { envId: string; scheduleId?: string }) {
  const { data, error } = useLoad(() => loadEditor(envId, scheduleId), [envId, scheduleId]);
  if (!data)
    return (
      <>
        <Title>Schedule</Title>
        <Pending error={error} />
      </>
    );
  if (data.destinations.length === 0)
    return (
      <>
        <Title>{`Schedule backups of ${data.env.name}`}</Title>
        <p>
          Backups need somewhere to go: <Link href="/app/destinations">add a destination</Link> first.
        </p>
      </>
    );
  return <Editor env={data.env} destinations={data.destinations} schedule={data.schedule} />;
}

function Editor({
  env,
  destinations,
  schedule,
}: {
  env: Environment;
  destinations: Destination[];
  schedule: Schedule | undefined;
}) {
  const [values, setValues] = useState<FormValues>(() => initialValues(destinations[0]!.id, schedule));
  const [saveError, setSaveError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const body = bodyOf(values);
  const state = useSchedulePreview(env.id, body, Number(values.count));
  // The field the API named, from saving or else from the preview: shown at that field.
  const problem = saveError ?? state.error;
  const at = (field: string) => (problem?.field === field ? problem : undefined);
  const invalid = (field: string) => ({
    'aria-invalid': at(field) ? 'true' : undefined,
    'aria-describedby': at(field) ? `${field}-error` : undefined,
  });
  return (
    <>
      <Title>{`${schedule ? 'Change the schedule' : 'Schedule backups'} of ${env.name}`}</Title>
      <p>
        <Link href={`/app/environments/${env.id}`}>Back to {env.name}</Link>
      </p>
      <div class="editor">
        <form
          class="schedule-form"
          onInput={(e: Event) => setValues(valuesOf(e.currentTarget as HTMLFormElement))}
          onChange={(e: Event) => setValues(valuesOf(e.currentTarget as HTMLFormElement))}
          onSubmit={async (e: Event) => {
            e.preventDefault();
            setBusy(true);
            setSaveError(undefined);
            try {
              if (schedule) await api('PUT', `/schedules/${schedule.id}`, body);
              else await api('POST', `/environments/${env.id}/schedules`, body);
              navigate(`/app/environments/${env.id}`);
            } catch (err) {
              setSaveError(err instanceof ApiError ? err : new ApiError(0, 'network', String(err)));
              setBusy(false);
            }
          }}
        >
          <ScheduleWhen values={values} problem={problem} />
          <fieldset>
            <legend>Where and how</legend>
            <div class="field">
              <label for="destinationId">Destination</label>
              <select
                id="destinationId"
                name="destinationId"
                value={values.destinationId}
                {...invalid('destinationId')}
              >
                {destinations.map((d) => (
                  <option value={d.id} selected={d.id === values.destinationId}>
                    {d.name}
                  </option>
                ))}
              </select>
              <FieldError id="destinationId-error" error={at('destinationId')} />
            </div>
            <div class="field">
              <label for="overlap">If the previous backup still runs</label>
              <select id="overlap" name="overlap" value={values.overlap}>
                <option value="skip" selected={values.overlap === 'skip'}>
                  Skip the run
                </option>
                <option value="bufferOne" selected={values.overlap === 'bufferOne'}>
                  Start it when the previous one ends
                </option>
              </select>
            </div>
            <div class="choice">
              <input type="checkbox" id="verify" name="verify" checked={values.verify === 'on'} />
              <label for="verify">Verify each snapshot right after its backup</label>
            </div>
          </fieldset>
          <fieldset>
            <legend>Keep (leave all empty to keep every snapshot)</legend>
            <div class="retention">
              {retentionKinds.map(({ name, label }) => (
                <div class="field">
                  <label for={`keep-${name}`}>{label}</label>
                  <input
                    id={`keep-${name}`}
                    name={name}
                    type="number"
                    min={1}
                    max={10000}
                    inputMode="numeric"
                    value={values[name]}
                    aria-invalid={problem?.field === `retention.${name}` ? 'true' : undefined}
                    aria-describedby={problem?.field?.startsWith('retention') ? 'retention-error' : undefined}
                  />
                </div>
              ))}
            </div>
            <FieldError
              id="retention-error"
              error={problem?.field?.startsWith('retention') ? problem : undefined}
            />
          </fieldset>
          <div class="field">
            <label for="count">Runs to preview</label>
            <select id="count" name="count" value={values.count}>
              {['5', '10', '25', '50'].map((n) => (
                <option value={n} selected={n === values.count}>
                  {n}
                </option>
              ))}
            </select>
          </div>
          {saveError && !saveError.field && (
            <p role="alert" class="error">
              {saveError.message}
            </p>
          )}
          <button type="submit" disabled={busy}>
            Save the schedule
          </button>
        </form>
        <PreviewPanel state={state} />
      </div>
    </>
  );
}
