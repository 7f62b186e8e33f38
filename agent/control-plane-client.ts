import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import {
  chunkIdsPerAsk,
  chunkPlacesPerAsk,
  damageReportCopies,
  packAccessPerAsk,
} from '../common/pack-upload-limits.ts';
import type { PackEntry } from '../format/v2/pack-layout.ts';
import type { TlsPin } from '../storage/pinned-client.ts';
import { httpRequest } from './http-request.ts';
import type { StorageUrl } from './storage-url.ts';

export interface AgentIdentity {
  serverId: string;
  teamId: string;
  serverName: string;
}

/** A host step handed to this agent; its input is unchecked until the runner parses it. */
export interface ClaimedTask {
  id: string;
  activity: string;
  input: unknown;
  attempt: number;
}

/** What an agent needs to fetch one snapshot it restores: short-lived URLs and the data key sealed to it. */
export interface RestoreAccess {
  snapshotId: string;
  /** docs/FORMAT.md: 2 is a manifest of chunks in the team's packs. */
  formatVersion: 1 | 2;
  /** The data object; format 2 has none. */
  dataUrl?: string;
  manifestUrl: string;
  /** Set when the snapshot is on a receiver: how its certificate is trusted. */
  pin?: TlsPin;
  sizeBytes: number;
  /** What fetching the snapshot downloads, for progress. */
  bytesExpected: number;
  keyId: string;
  /** crypto_box_seal(data key, this agent's public key), hex: of the data object, or of a format-2 manifest. */
  sealedDataKey: string;
}

/** Where a chunk of a format-2 snapshot lies, as the control plane's index says. */
export interface ChunkPlace {
  chunkId: string;
  packId: string;
  offset: number;
  length: number;
  rawLength: number;
}

/** How to read a pack of a format-2 snapshot being restored: a URL, and its data key sealed to this agent. */
export interface PackAccess {
  packId: string;
  url: StorageUrl;
  sealedDataKey: string;
}

export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
  constructor(
    readonly status: number,
    message: string,
    /** The API's own error code; absent when something in front of it answered (a proxy's 502). */
    readonly code?: string,
  ) {
    super(message);
  }
}

// An API restart (or a proxy in front of it without an upstream for a moment) is waited out this long
// by the calls a running step makes, as its reports are; Temporal retries the step after 30 s without
// a heartbeat anyway, so waiting much longer would only hold a step nobody runs.
const patienceMs = 60_000;

/**
 * An answer that may be different in a moment: no connection, no answer in time, a gateway's 5xx.
 * A 503 the API itself gives (its code says, e.g. storage_unreachable) is an answer about something
 * else, not the API away: the step decides what to do with it.
 */
function transient(err: unknown): boolean {
  if (err instanceof ControlPlaneError)
    return !err.code && (err.status === 502 || err.status === 503 || err.status === 504);
  return true;
}

/**
 * The agent's only channel to the control plane: HTTPS with its agent token, every answer scoped by
 * the API to this agent's server. Tasks, their progress and results, specs, URLs and sealed keys all
 * travel here; the agent never reaches Temporal or the database.
 */
export class ControlPlaneClient {
  constructor(
    private readonly apiUrl: string,
    private readonly agentToken: string,
  ) {}

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    { timeoutMs = 30_000, signal }: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const res = await httpRequest(new URL(path, this.apiUrl), {
      method,
      headers: {
        authorization: `Bearer ${this.agentToken}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    let answer: { error?: { message?: string; code?: string } } = {};
    try {
      answer = res.body ? (JSON.parse(res.body) as typeof answer) : {};
    } catch {
      // not JSON (a proxy's error page): the status says enough
    }
    if (res.status < 200 || res.status > 299)
      throw new ControlPlaneError(
        res.status,
        answer.error?.message ?? `HTTP ${res.status} from ${path}`,
        answer.error?.code,
      );
    return answer as T;
  }

  /** The same for what a running step needs from the API mid-way (a spec, URLs, access). */
  private async patiently<T>(method: string, path: string, body?: unknown): Promise<T> {
    const deadline = Date.now() + patienceMs;
    for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 5_000)) {
      try {
        return await this.call<T>(method, path, body);
      } catch (err) {
        if (!transient(err) || Date.now() + delayMs > deadline) throw err;
        await sleep(delayMs);
      }
    }
  }

  /** Enrols with the agent's public key: restores re-seal data keys to it. */
  hello(publicKey: Buffer): Promise<AgentIdentity> {
    return this.call('POST', '/agent/hello', { publicKey: publicKey.toString('hex') });
  }

  async environmentSpec(environmentId: string): Promise<EnvironmentSpec> {
    const spec = await this.patiently<EnvironmentSpec>(
      'GET',
      `/agent/environments/${encodeURIComponent(environmentId)}`,
    );
    // Paths and process records are keyed by the spec's id: it must be the environment the task named.
    if (spec.environmentId !== environmentId)
      throw new ControlPlaneError(502, `asked for environment ${environmentId}, got ${spec.environmentId}`);
    return spec;
  }

  /** URLs for parts of a snapshot's data object; only for a snapshot this server is taking. */
  async partUrls(snapshotId: string, partNumbers: number[]): Promise<Map<number, StorageUrl>> {
    const { urls, pin } = await this.patiently<{ urls: { partNumber: number; url: string }[]; pin?: TlsPin }>(
      'POST',
      `/agent/snapshots/${encodeURIComponent(snapshotId)}/part-urls`,
      { partNumbers },
    );
    return new Map(urls.map((u) => [u.partNumber, { url: u.url, ...(pin && { pin }) }]));
  }

  /** The parts of a snapshot's multipart upload the storage holds (ListParts, done by the control plane). */
  async uploadedParts(snapshotId: string): Promise<{ partNumber: number; etag: string; size: number }[]> {
    return (
      await this.patiently<{ parts: { partNumber: number; etag: string; size: number }[] }>(
        'GET',
        `/agent/snapshots/${encodeURIComponent(snapshotId)}/parts`,
      )
    ).parts;
  }

  manifestUrl(snapshotId: string): Promise<StorageUrl> {
    return this.patiently('POST', `/agent/snapshots/${encodeURIComponent(snapshotId)}/manifest-url`);
  }

  /** The team's dedup key, which names chunks (docs/FORMAT.md); it opens nothing. */
  async dedupKey(): Promise<Buffer> {
    const { dedupKey } = await this.patiently<{ dedupKey: string }>('GET', '/agent/dedup-key');
    return Buffer.from(dedupKey, 'hex');
  }

  /** The chunks a format-2 snapshot's manifest references (hex), reported before it completes. */
  async chunksReferenced(snapshotId: string, ids: string[]): Promise<void> {
    for (let at = 0; at < ids.length; at += chunkIdsPerAsk)
      await this.patiently('POST', `/agent/snapshots/${encodeURIComponent(snapshotId)}/chunks/referenced`, {
        ids: ids.slice(at, at + chunkIdsPerAsk),
      });
  }

  /**
   * Of these chunks of a format-2 snapshot this server is taking, the ones to upload (hex); the API
   * keeps the others for this backup. Asked in batches the API takes.
   */
  async chunksNeeded(snapshotId: string, ids: Buffer[]): Promise<Set<string>> {
    const needed = new Set<string>();
    for (let at = 0; at < ids.length; at += chunkIdsPerAsk) {
      const answer = await this.patiently<{ needed: string[] }>(
        'POST',
        `/agent/snapshots/${encodeURIComponent(snapshotId)}/chunks/needed`,
        { ids: ids.slice(at, at + chunkIdsPerAsk).map((id) => id.toString('hex')) },
      );
      for (const id of answer.needed) needed.add(id);
    }
    return needed;
  }

  /** A new pack of a snapshot this server is taking: its id, and the URL to PUT the whole pack to. */
  async startPack(snapshotId: string): Promise<{ packId: string; url: StorageUrl }> {
    const { packId, url, pin } = await this.patiently<{ packId: string; url: string; pin?: TlsPin }>(
      'POST',
      `/agent/snapshots/${encodeURIComponent(snapshotId)}/packs`,
    );
    return { packId, url: { url, ...(pin && { pin }) } };
  }

  /** Reports a pack uploaded, with its index as the pack writer answered it; the API checks both. */
  async packStored(
    snapshotId: string,
    packId: string,
    pack: { sizeBytes: number; entries: PackEntry[] },
  ): Promise<void> {
    await this.patiently(
      'POST',
      `/agent/snapshots/${encodeURIComponent(snapshotId)}/packs/${encodeURIComponent(packId)}/stored`,
      {
        sizeBytes: pack.sizeBytes,
        entries: pack.entries.map((e) => ({
          chunkId: e.id.toString('hex'),
          offset: e.offset,
          length: e.length,
          rawLength: e.rawLength,
        })),
      },
    );
  }

  restoreAccess(operationId: string): Promise<RestoreAccess> {
    return this.patiently('POST', `/agent/restores/${encodeURIComponent(operationId)}/access`);
  }

  /** Refuses (not found) unless this server has a running restore of that operation for that environment. */
  async confirmRestore(ref: { operationId: string; environmentId: string }): Promise<void> {
    const restore = await this.patiently<{ environmentId: string }>(
      'GET',
      `/agent/restores/${encodeURIComponent(ref.operationId)}`,
    );
    if (restore.environmentId !== ref.environmentId)
      throw new ControlPlaneError(404, `restore ${ref.operationId} is not a restore of ${ref.environmentId}`);
  }

  /** Long poll for the next task of this server; undefined when none came within the wait. */
  async claimTask(waitSeconds: number, signal: AbortSignal): Promise<ClaimedTask | undefined> {
    const answer = await this.call<{ task?: ClaimedTask }>(
      'POST',
      '/agent/tasks/claim',
      { waitSeconds },
      { timeoutMs: (waitSeconds + 15) * 1000, signal },
    );
    return answer.task;
  }

  async taskHeartbeat(taskId: string, details: unknown): Promise<{ cancelRequested: boolean }> {
    return this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/heartbeat`, { details });
  }

  async completeTask(taskId: string, result: unknown): Promise<void> {
    await this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/complete`, { result });
  }

  async failTask(
    taskId: string,
    failure: { message: string; type: string; nonRetryable: boolean },
  ): Promise<void> {
    await this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/fail`, failure);
  }

  async taskCancelled(taskId: string): Promise<void> {
    await this.call('POST', `/agent/tasks/${encodeURIComponent(taskId)}/cancelled`);
  }

  /** Where chunks of the format-2 snapshot this server is restoring lie (hex ids), asked in batches. */
  locateRestoreChunks(operationId: string, ids: string[]): Promise<ChunkPlace[]> {
    return this.locateChunks('restores', operationId, ids);
  }

  /** URLs and sealed data keys of packs holding chunks of the snapshot this server is restoring. */
  restorePackAccess(operationId: string, packIds: string[]): Promise<PackAccess[]> {
    return this.packAccess('restores', operationId, packIds);
  }

  /** The same for the format-2 snapshot this server is verifying. */
  locateVerificationChunks(operationId: string, ids: string[]): Promise<ChunkPlace[]> {
    return this.locateChunks('verifications', operationId, ids);
  }

  verificationPackAccess(operationId: string, packIds: string[]): Promise<PackAccess[]> {
    return this.packAccess('verifications', operationId, packIds);
  }

  /**
   * Copies the restore or verification found damaged (hex chunk ids); answers how many the control
   * plane marked bad.
   */
  async reportDamage(
    kind: 'restores' | 'verifications',
    operationId: string,
    copies: { chunkId: string; packId: string }[],
  ): Promise<number> {
    let marked = 0;
    for (let at = 0; at < copies.length; at += damageReportCopies) {
      const answer = await this.patiently<{ marked: number }>(
        'POST',
        `/agent/${kind}/${encodeURIComponent(operationId)}/damage`,
        { copies: copies.slice(at, at + damageReportCopies) },
      );
      marked += answer.marked;
    }
    return marked;
  }

  private async locateChunks(
    kind: 'restores' | 'verifications',
    operationId: string,
    ids: string[],
  ): Promise<ChunkPlace[]> {
    const out: ChunkPlace[] = [];
    for (let at = 0; at < ids.length; at += chunkPlacesPerAsk) {
      const answer = await this.patiently<{ locations: ChunkPlace[] }>(
        'POST',
        `/agent/${kind}/${encodeURIComponent(operationId)}/chunks/locate`,
        { ids: ids.slice(at, at + chunkPlacesPerAsk) },
      );
      out.push(...answer.locations);
    }
    return out;
  }

  private async packAccess(
    kind: 'restores' | 'verifications',
    operationId: string,
    packIds: string[],
  ): Promise<PackAccess[]> {
    const out: PackAccess[] = [];
    for (let at = 0; at < packIds.length; at += packAccessPerAsk) {
      const { packs, pin } = await this.patiently<{
        packs: { packId: string; url: string; sealedDataKey: string }[];
        pin?: TlsPin;
      }>('POST', `/agent/${kind}/${encodeURIComponent(operationId)}/packs/access`, {
        packIds: packIds.slice(at, at + packAccessPerAsk),
      });
      for (const p of packs) out.push({ ...p, url: { url: p.url, ...(pin && { pin }) } });
    }
    return out;
  }

  /** The same as restoreAccess for a snapshot this agent verifies (streams and checks, writing nothing). */
  verificationAccess(operationId: string): Promise<RestoreAccess> {
    return this.patiently('POST', `/agent/verifications/${encodeURIComponent(operationId)}/access`);
  }
}
