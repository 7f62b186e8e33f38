// Shared by workflows (which must stay deterministic) and the API: types and pure helpers only.

export type OperationKind = 'deploy' | 'stop' | 'backup' | 'restore' | 'verify';
export type OperationStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface OperationStep {
  name: string;
  status: StepStatus;
  startedAt?: string;
  endedAt?: string;
  /** Bytes the step moved, where it moves data (a backup's upload, a restore's download). */
  bytes?: number;
  /** bytes over the step's duration. */
  bytesPerSecond?: number;
  /** What a user should know of how the step went, e.g. that an upload resumed after a retry. */
  note?: string;
  error?: string;
  /** While the step runs, what its host step last reported (the API signals it every ~10 s). */
  transfer?: Transfer;
}

/** A host step moving data, as its agent last reported it. */
export interface Transfer {
  /** The host step (captureSnapshot, fetchAndUnpack, verifySnapshotOnHost). */
  step: string;
  bytes: number;
  /** Unknown until the step knows it (a backup's size once captured). */
  totalBytes: number | null;
  bytesPerSecond: number | null;
  etaSeconds: number | null;
  at: string;
}

export interface OperationProgress {
  status: OperationStatus;
  steps: OperationStep[];
  error?: string;
}

export const activeStatuses: OperationStatus[] = ['pending', 'running'];
