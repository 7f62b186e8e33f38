// The API's answers as the page reads them: the fields it shows, named as the OpenAPI document names them.

/** A page of a list: its items under the list's name, and the path of the next page. */
export type Page<K extends string, T> = Record<K, T[]> & { next: string | null };

export interface Environment {
  id: string;
  name: string;
  serverId: string;
}

export interface Server {
  id: string;
  name: string;
  connected: boolean;
  lastSeenAt: string | null;
}

export interface Destination {
  id: string;
  name: string;
}

export interface Snapshot {
  id: string;
  createdAt: string;
  sizeBytes: number;
  captureMs: number;
  frozenMs: number;
  pinned: boolean;
  destinationId: string;
  lastVerified: { at: string; result: 'ok' | 'failed' | 'missing'; error: string | null } | null;
}

export interface BackupsOverview {
  lastSuccessfulBackup: { snapshotId: string; at: string; sizeBytes: number } | null;
  lastVerified: { at: string; result: string; error: string | null } | null;
  nextRuns: { scheduleId: string; at: string; local: string }[];
  missedRuns: {
    count: number;
    latest: { scheduleId: string; nominalAt: string; status: string; reason: string | null }[];
  };
  storage: { destinationId: string; snapshots: number; bytes: number }[];
  schedules: { scheduleId: string; enabled: boolean; retentionInWords: string }[];
}

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface Operation {
  id: string;
  kind: 'deploy' | 'stop' | 'backup' | 'restore' | 'verify';
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  environmentId: string;
  serverId: string;
  workflowId: string;
  steps: {
    name: string;
    status: StepStatus;
    startedAt?: string;
    endedAt?: string;
    bytes?: number;
    bytesPerSecond?: number;
    note?: string;
    error?: string;
  }[];
  transfer: {
    stepName: string;
    bytes: number;
    totalBytes: number | null;
    bytesPerSecond: number | null;
    etaSeconds: number | null;
  } | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  restore?: { snapshotId: string; targetServerId: string; downtimeMs: number | null };
  /** The workflow's page in the Temporal UI, when the API knows the UI's address. */
  temporalUiUrl?: string;
}

export type Preset =
  'every15Minutes' | 'every30Minutes' | 'hourly' | 'every6Hours' | 'every12Hours' | 'daily' | 'weekly';

export type RetentionRule = Partial<
  Record<'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly', number>
>;

/** What POST /environments/{id}/schedules (and its preview) takes. */
export interface ScheduleBody {
  preset?: Preset;
  minute?: number;
  at?: string;
  day?: string;
  cron?: string;
  timezone: string;
  destinationId: string;
  overlap: 'skip' | 'bufferOne';
  retention?: RetentionRule;
  verify: boolean;
}

export interface Schedule extends Omit<ScheduleBody, 'retention'> {
  id: string;
  environmentId: string;
  cron: string;
  enabled: boolean;
  retention: RetentionRule | null;
  retentionInWords: string;
}

export interface SchedulePreview {
  cron: string;
  timezone: string;
  runs: { at: string; local: string }[];
  warnings: string[];
  overlapInWords: string;
}

export interface NewTeamKey {
  publicKey: string;
  fingerprint: string;
  secretKey: string;
  notice: string;
}

export interface DestinationDetail extends Destination {
  kind: 's3' | 'receiver';
  endpoint: string | null;
  bucket: string | null;
  prefix: string;
  receiver: { url: string; fingerprint: string | null; customCa: boolean } | null;
  lastCheckedAt: string | null;
}

export interface CreatedDestination {
  destination: DestinationDetail;
  teamKey: NewTeamKey | null;
}

export interface Team {
  id: string;
  name: string;
  key: { fingerprint: string; publicKey: string; createdAt: string } | null;
}

export const webhookEvents = [
  'backup.succeeded',
  'backup.failed',
  'backup.missed',
  'restore.finished',
  'restore.failed',
  'snapshot.verification_failed',
] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  createdAt: string;
}

export interface WebhookDelivery {
  id: string;
  event: WebhookEvent;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}
