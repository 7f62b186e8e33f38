import { transferred, type Logger } from '../common/log.ts';
import { unpackArchive } from '../format/archive-reader.ts';
import type { AgentKey } from './agent-key.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
// Types only: the module itself is loaded at a format-2 verification's first use (idle memory).
import type { DedupVerifyInput } from './dedup-verify.ts';
import type { RateLimit } from './rate-limit.ts';
import { counted, download } from './http-download.ts';
import { classify, dataObject, fetchManifest, openAccess, type RestoreRef } from './stored-snapshot.ts';

export interface VerifyDeps {
  controlPlane: Pick<
    ControlPlaneClient,
    'verificationAccess' | 'dedupKey' | 'locateVerificationChunks' | 'verificationPackAccess' | 'reportDamage'
  >;
  agentKey: AgentKey;
  downloadLimit?: RateLimit;
  log: Logger;
}

async function verifyV2(deps: VerifyDeps, input: DedupVerifyInput) {
  const { verifyDedupSnapshot } = await import('./dedup-verify.ts');
  return verifyDedupSnapshot(deps, input);
}

/**
 * Streams a stored snapshot from its destination and checks all of it, writing nothing: every chunk
 * authenticated, every entry against the manifest, every file's SHA-256 (format 1); every blob of
 * its packs, or of the `subset` percentage of them asked (format 2). Any failure is a RestoreError
 * saying what is wrong with the snapshot.
 */
export async function verifyStoredSnapshot(
  deps: VerifyDeps,
  ref: RestoreRef & { subset?: number },
  onProgress: (p: { bytesFetched: number }) => void,
  signal?: AbortSignal,
): Promise<{ entries: number; bytes: number }> {
  const started = Date.now();
  const { access: a, dataKey } = openAccess(
    deps.agentKey,
    await deps.controlPlane.verificationAccess(ref.operationId),
  );
  try {
    if (a.formatVersion === 2) {
      const onFetched = (bytes: number) => onProgress({ bytesFetched: bytes });
      const result = await verifyV2(deps, { ref, access: a, dataKey, signal, onFetched });
      deps.log.info({ ...transferred(result.bytes, started), entries: result.entries }, 'verified');
      return result;
    }
    const manifest = await fetchManifest(a, dataKey, ref);
    deps.log.info({ snapshotId: a.snapshotId, volumes: manifest.volumes }, 'verifying the snapshot');
    const body = await download(dataObject(a), signal);
    let fetched = 0;
    const source = counted(deps.downloadLimit?.paced(body) ?? body, (bytes) => {
      fetched = bytes;
      onProgress({ bytesFetched: bytes });
    });
    const result = await unpackArchive({
      source,
      key: { dataKey },
      expectedKeyId: Buffer.from(a.keyId, 'hex'),
      manifest,
      staging: '/nonexistent/verify-only',
      verifyOnly: true,
    }).catch(classify);
    deps.log.info({ ...transferred(fetched, started), entries: result.entries }, 'verified');
    return { entries: result.entries, bytes: fetched };
  } finally {
    dataKey.fill(0);
  }
}
