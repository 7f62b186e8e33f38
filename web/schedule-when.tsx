import type { ApiError } from './api.ts';
import { presets, timeZones, usesAt, usesMinute, weekdays, type FormValues } from './schedule-form.ts';
import { FieldError } from './ui.tsx';

/** The schedule editor's "when": a preset (with its minute, day or time) or a cron expression, and the zone. */
export function ScheduleWhen({ values, problem }: { values: FormValues; problem: ApiError | undefined }) {
  // The field the API named, from saving or else from the preview: shown at that field.
  const at = (field: string) => (problem?.field === field ? problem : undefined);
  const invalid = (field: string) => ({
    'aria-invalid': at(field) ? 'true' : undefined,
    'aria-describedby': at(field) ? `${field}-error` : undefined,
  });
  const preset = values.preset!;
  return (
    <fieldset>
      <legend>When</legend>
      <div class="choice">
        <input type="radio" name="mode" id="mode-preset" value="preset" checked={values.mode !== 'cron'} />
        <label for="mode-preset">A preset</label>
        <input type="radio" name="mode" id="mode-cron" value="cron" checked={values.mode === 'cron'} />
        <label for="mode-cron">A cron expression</label>
      </div>
      {values.mode === 'cron' ? (
        <div class="field">
          <label for="cron">Cron expression</label>
          <input
            id="cron"
            name="cron"
            value={values.cron}
            placeholder="30 2 * * *"
            autocomplete="off"
            spellcheck={false}
            aria-describedby={at('cron') ? 'cron-error cron-help' : 'cron-help'}
            aria-invalid={at('cron') ? 'true' : undefined}
          />
          <p id="cron-help" class="muted">
            minute hour day-of-month month day-of-week, in the time zone below
          </p>
          <FieldError id="cron-error" error={at('cron')} />
        </div>
      ) : (
        <div class="field">
          <label for="preset">Preset</label>
          <select id="preset" name="preset" value={preset} {...invalid('preset')}>
            {presets.map((p) => (
              <option value={p.value} selected={p.value === preset}>
                {p.label}
              </option>
            ))}
          </select>
          <FieldError id="preset-error" error={at('preset')} />
        </div>
      )}
      {values.mode !== 'cron' && usesMinute(preset) && (
        <div class="field">
          <label for="minute">Minute past the hour</label>
          <input
            id="minute"
            name="minute"
            type="number"
            min={0}
            max={59}
            value={values.minute}
            {...invalid('minute')}
          />
          <FieldError id="minute-error" error={at('minute')} />
        </div>
      )}
      {values.mode !== 'cron' && preset === 'weekly' && (
        <div class="field">
          <label for="day">Day</label>
          <select id="day" name="day" value={values.day} {...invalid('day')}>
            {weekdays.map((d) => (
              <option value={d} selected={d === values.day}>
                {d[0]!.toUpperCase() + d.slice(1)}
              </option>
            ))}
          </select>
        </div>
      )}
      {values.mode !== 'cron' && usesAt(preset) && (
        <div class="field">
          <label for="at">Local time</label>
          <input id="at" name="at" type="time" required value={values.at} {...invalid('at')} />
          <FieldError id="at-error" error={at('at')} />
        </div>
      )}
      <div class="field">
        <label for="timezone">Time zone</label>
        <select id="timezone" name="timezone" value={values.timezone} {...invalid('timezone')}>
          {timeZones.map((z) => (
            <option value={z} selected={z === values.timezone}>
              {z}
            </option>
          ))}
        </select>
        <FieldError id="timezone-error" error={at('timezone')} />
      </div>
    </fieldset>
  );
}
