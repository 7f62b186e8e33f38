import * as z from './zod-mini.ts';
import { idPattern, type IdKind } from './ids.ts';
import { namePattern, nameRule } from './names.ts';

/**
 * The steps that run on a connected server, as the workflows, the control plane and the agent all
 * see them: each one's input and result. Agents are on the far side of the trust boundary, so both
 * directions are checked against these schemas: the agent refuses a task whose ids are not ids
 * before touching a file, and the API refuses a result that is not of its step's shape before it
 * reaches a workflow.
 */
const id = (kind: IdKind) => z.string().check(z.regex(idPattern(kind), `must be a ${kind}_ id`));
const count = z.int().check(z.nonnegative(), z.maximum(Number.MAX_SAFE_INTEGER));
const epochMs = count;
const nameSchema = z.string().check(z.regex(namePattern, nameRule));
const sha256 = z.string().check(z.regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex'));

const environmentRef = z.strictObject({ environmentId: id('env') });
const restoreRef = z.strictObject({ operationId: id('op'), environmentId: id('env') });
const nothing = z.pipe(
  z.union([z.undefined(), z.null()]),
  z.transform((): void => undefined),
);

/**
 * How a volume was taken at the snapshot's point in time: a file-system snapshot made inside the
 * hold (which lets the services go at once), or `read` while the services were held, as before.
 */
export const snapshotMethods = ['btrfs-subvolume', 'reflink', 'read'] as const;
export type SnapshotMethod = (typeof snapshotMethods)[number];

const captureInput = z.strictObject({
  snapshotId: id('snap'),
  environmentId: id('env'),
  teamPublicKey: z.string().check(z.regex(/^[0-9a-f]{64}$/, 'must be an X25519 public key in hex')),
});

export const hostTasks = {
  captureSnapshot: {
    input: captureInput,
    result: z.object({
      sizeBytes: count,
      dataSha256: sha256,
      manifestSha256: sha256,
      tarBytes: count,
      entries: count,
      frozenMs: count,
      parts: z
        .array(
          z.object({
            partNumber: z.int().check(z.minimum(1), z.maximum(10_000)),
            etag: z.string().check(z.minLength(1), z.maxLength(200)),
            size: count,
          }),
        )
        .check(z.maxLength(10_000)),
      captureMs: count,
      firstByteAt: epochMs,
      partsResumed: count,
      // Optional: an agent older than this field, or a capture one spooled before an upgrade, sends none.
      volumes: z.optional(
        z.array(z.object({ name: nameSchema, entries: count, bytes: count })).check(z.maxLength(32)),
      ),
      // Optional for the same reason: agents before file-system snapshots held for the whole read.
      methods: z.optional(z.record(nameSchema, z.enum(snapshotMethods))),
    }),
  },
  /** A format-2 (deduplicated) snapshot: docs/FORMAT.md, "Version 2". */
  captureDedupSnapshot: {
    input: captureInput,
    result: z.object({
      manifestSha256: sha256,
      entries: count,
      chunks: count,
      bytes: count,
      frozenMs: count,
      methods: z.record(nameSchema, z.enum(snapshotMethods)),
      volumes: z.array(z.object({ name: nameSchema, entries: count, bytes: count })).check(z.maxLength(32)),
      figures: z.object({
        filesRead: count,
        filesUnchanged: count,
        bytesRead: count,
        // Sent by agents since 2026-12-07.
        bytesInPlace: z.optional(count),
        chunksStored: count,
        bytesStored: count,
        packs: count,
        packedBytes: count,
        skipped: count,
      }),
      captureMs: count,
    }),
  },
  startEnvironment: { input: environmentRef, result: nothing },
  waitHealthy: { input: environmentRef, result: z.object({ healthyAt: epochMs }) },
  stopEnvironment: {
    input: environmentRef,
    result: z.object({ wasRunning: z.boolean(), stoppingAt: epochMs }),
  },
  preflightRestore: {
    input: restoreRef,
    result: z.object({ entries: count, unpackedBytes: count, freeBytes: count }),
  },
  fetchAndUnpack: {
    input: restoreRef,
    result: z.object({
      bytes: count,
      resumedAfterEntries: count,
      entries: count,
      unpackedBytes: count,
    }),
  },
  verifySnapshotOnHost: {
    // subset: the percentage of a format-2 snapshot's packs read (all of them when absent).
    input: z.strictObject({
      ...restoreRef.shape,
      subset: z.optional(z.int().check(z.minimum(1), z.maximum(100))),
    }),
    result: z.object({ entries: count, bytes: count }),
  },
  swapIn: { input: restoreRef, result: nothing },
  swapBack: { input: restoreRef, result: nothing },
  discardRestore: { input: restoreRef, result: nothing },
  finishRestore: { input: restoreRef, result: nothing },
} as const;

export type HostTaskName = keyof typeof hostTasks;
export const hostTaskNames = Object.keys(hostTasks) as HostTaskName[];

export type HostTaskInput<N extends HostTaskName> = z.input<(typeof hostTasks)[N]['input']>;
export type HostTaskResult<N extends HostTaskName> = z.output<(typeof hostTasks)[N]['result']>;

/** The host steps as a workflow calls them: one per name, input in, result out. */
export type HostActivities = { [N in HostTaskName]: (input: HostTaskInput<N>) => Promise<HostTaskResult<N>> };

/** What a control-plane activity standing for a host step receives: the step's input and where it runs. */
export interface HostTaskEnvelope<N extends HostTaskName = HostTaskName> {
  serverId: string;
  input: HostTaskInput<N>;
}

export function isHostTaskName(name: string): name is HostTaskName {
  return Object.hasOwn(hostTasks, name);
}

// What a step's heartbeat details say of the bytes it moved, for the steps that move data. Parsed, not
// trusted: details come from the agent, and anything not of this shape is simply not shown.
const transferDetails = {
  captureSnapshot: z.pipe(
    z.object({ bytesUploaded: count, bytesExpected: z.nullable(count) }),
    z.transform((d) => ({ bytes: d.bytesUploaded, totalBytes: d.bytesExpected })),
  ),
  // What it sent of the chunks the destination lacked, of all it is to send once the volumes are read:
  // the network is what takes the time (what it reads is mostly found stored).
  captureDedupSnapshot: z.pipe(
    // An agent older than the total sends none: its bytes still show.
    z.object({ bytesUploaded: count, bytesExpected: z.optional(z.nullable(count)) }),
    z.transform((d) => ({ bytes: d.bytesUploaded, totalBytes: d.bytesExpected ?? null })),
  ),
  fetchAndUnpack: z.pipe(
    z.object({ bytesFetched: count, bytesExpected: count }),
    z.transform((d) => ({ bytes: d.bytesFetched, totalBytes: d.bytesExpected })),
  ),
  verifySnapshotOnHost: z.pipe(
    z.object({ bytesFetched: count }),
    z.transform((d) => ({ bytes: d.bytesFetched, totalBytes: null })),
  ),
} satisfies Partial<Record<HostTaskName, z.ZodMiniType>>;

/** Bytes done (and the total, when known) that a heartbeat of `step` reports; undefined for other steps. */
export function transferOf(
  step: HostTaskName,
  details: unknown,
): { bytes: number; totalBytes: number | null } | undefined {
  if (!Object.hasOwn(transferDetails, step)) return undefined;
  const parsed = transferDetails[step as keyof typeof transferDetails].safeParse(details);
  return parsed.success ? parsed.data : undefined;
}
