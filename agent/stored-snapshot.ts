import { openDataKey } from '../format/data-key.ts';
import { SnapshotFormatError } from '../format/format-error.ts';
import { RefusedEntryError } from '../format/entry-rules.ts';
import { openManifest } from '../format/manifest-object.ts';
import { maxManifestBytes, type Manifest } from '../format/manifest.ts';
import type { AgentKey } from './agent-key.ts';
import type { RestoreAccess } from './control-plane-client.ts';
import { downloadSmall } from './http-download.ts';
import type { StorageUrl } from './storage-url.ts';

// What a restore and a verification share: opening a stored snapshot's key and manifest on the
// agent, and what is wrong with a snapshot that will not open.

export interface RestoreRef {
  operationId: string;
  environmentId: string;
}

export type RestoreErrorType =
  'SnapshotCorrupt' | 'WrongKey' | 'NotEnoughDisk' | 'DiskFull' | 'CannotSwap' | 'UnsupportedFormat';

/** A restore that cannot succeed by trying again. */
export class RestoreError extends Error {
  override name = 'RestoreError';
  constructor(
    readonly type: RestoreErrorType,
    message: string,
  ) {
    super(message);
  }
}

/** Turns what a snapshot cannot be restored from (refused, the wrong key, a full disk) into a RestoreError. */
export function classify(err: unknown): never {
  if (err instanceof SnapshotFormatError) {
    throw new RestoreError(
      err.kind === 'wrong_key' ? 'WrongKey' : 'SnapshotCorrupt',
      `the stored snapshot: ${err.message}`,
    );
  }
  if (err instanceof RefusedEntryError) throw new RestoreError('SnapshotCorrupt', err.message);
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
    throw new RestoreError('DiskFull', `the disk filled up while unpacking: ${(err as Error).message}`);
  }
  throw err;
}

/** The data key sealed to this agent, opened with its own key. */
export function openAccess(
  agentKey: AgentKey,
  access: RestoreAccess,
): { access: RestoreAccess; dataKey: Buffer } {
  const dataKey = openDataKey(
    Buffer.from(access.sealedDataKey, 'hex'),
    agentKey.publicKey,
    agentKey.secretKey,
  );
  if (!dataKey) {
    throw new RestoreError(
      'WrongKey',
      "the data key was not sealed to this agent's key (was its agent.key replaced?)",
    );
  }
  return { access, dataKey };
}

/** The data object of a format-1 snapshot; a step that reads only format 1 refuses another. */
export function dataObject(a: RestoreAccess): StorageUrl {
  if (!a.dataUrl)
    throw new RestoreError(
      'UnsupportedFormat',
      `snapshot ${a.snapshotId} is of format ${a.formatVersion}, which this step does not read`,
    );
  return { url: a.dataUrl, ...(a.pin && { pin: a.pin }) };
}

/** The snapshot's manifest, opened, and checked to name the snapshot and environment asked for. */
export async function fetchManifest(a: RestoreAccess, dataKey: Buffer, ref: RestoreRef): Promise<Manifest> {
  const sealed = await downloadSmall({ url: a.manifestUrl, pin: a.pin }, maxManifestBytes);
  const manifest = await openManifest(sealed, { dataKey }, Buffer.from(a.keyId, 'hex')).catch(classify);
  if (manifest.environmentId !== ref.environmentId || manifest.snapshotId !== a.snapshotId) {
    throw new RestoreError(
      'SnapshotCorrupt',
      `the manifest names snapshot ${manifest.snapshotId} of ${manifest.environmentId}, not ${a.snapshotId} of ${ref.environmentId}`,
    );
  }
  return manifest;
}
