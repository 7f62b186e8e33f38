import type { Preset, RetentionRule, Schedule, ScheduleBody } from './types.ts';

// The schedule editor's fields as the form holds them (all text), and the body the API takes from them.

export const presets: { value: Preset; label: string }[] = [
  { value: 'every15Minutes', label: 'Every 15 minutes' },
  { value: 'every30Minutes', label: 'Every 30 minutes' },
  { value: 'hourly', label: 'Every hour' },
  { value: 'every6Hours', label: 'Every 6 hours' },
  { value: 'every12Hours', label: 'Every 12 hours' },
  { value: 'daily', label: 'Every day' },
  { value: 'weekly', label: 'Every week' },
];

export const weekdays = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

export const retentionKinds = [
  { name: 'last', label: 'Last snapshots' },
  { name: 'hourly', label: 'Hourly' },
  { name: 'daily', label: 'Daily' },
  { name: 'weekly', label: 'Weekly' },
  { name: 'monthly', label: 'Monthly' },
  { name: 'yearly', label: 'Yearly' },
] as const;

export type FormValues = Record<string, string>;

export const usesMinute = (preset: string) => ['hourly', 'every6Hours', 'every12Hours'].includes(preset);
export const usesAt = (preset: string) => preset === 'daily' || preset === 'weekly';

/** The viewer's own zone, and every zone the browser knows (UTC first: it has no clock changes). */
export const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
export const timeZones = ['UTC', ...Intl.supportedValuesOf('timeZone').filter((z) => z !== 'UTC')];

export function initialValues(destinationId: string, schedule?: Schedule): FormValues {
  const values: FormValues = {
    mode: schedule && !schedule.preset ? 'cron' : 'preset',
    preset: schedule?.preset ?? 'daily',
    minute: String(schedule?.minute ?? 0),
    at: schedule?.at ?? '03:30',
    day: schedule?.day ?? 'sunday',
    cron: schedule && !schedule.preset ? schedule.cron : '',
    timezone: schedule?.timezone ?? viewerZone,
    destinationId: schedule?.destinationId ?? destinationId,
    overlap: schedule?.overlap ?? 'skip',
    verify: schedule?.verify ? 'on' : '',
    count: '10',
  };
  for (const { name } of retentionKinds) values[name] = String(schedule?.retention?.[name] ?? '');
  return values;
}

export function valuesOf(form: HTMLFormElement): FormValues {
  const values: FormValues = { verify: '' };
  for (const [name, value] of new FormData(form)) values[name] = String(value);
  return values;
}

/** The body to preview or save: only the fields the chosen preset or expression uses. */
export function bodyOf(v: FormValues): ScheduleBody {
  const body: ScheduleBody = {
    timezone: v.timezone!,
    destinationId: v.destinationId!,
    overlap: v.overlap === 'bufferOne' ? 'bufferOne' : 'skip',
    verify: v.verify === 'on',
  };
  if (v.mode === 'cron') body.cron = v.cron ?? '';
  else {
    body.preset = v.preset as Preset;
    if (usesMinute(body.preset)) body.minute = Number(v.minute || 0);
    if (usesAt(body.preset)) body.at = v.at;
    if (body.preset === 'weekly') body.day = v.day;
  }
  const retention: RetentionRule = {};
  for (const { name } of retentionKinds) if (v[name]) retention[name] = Number(v[name]);
  if (Object.keys(retention).length) body.retention = retention;
  return body;
}
