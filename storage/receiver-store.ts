import { createHash, randomBytes } from 'node:crypto';
import type { TlsPin } from './pinned-client.ts';
import { maxPartBytes, objectUrl, receiverUrl, signedObjectUrl, type WriterAction } from './receiver-urls.ts';
import { receiverError, receiverRequest } from './receiver-client.ts';
import type { SnapshotStore, StoredPart } from './snapshot-store.ts';

// Like presigned S3 URLs: long enough for a part on a slow uplink, short enough to be worthless soon after.
const urlTtlSeconds = 3600;

export interface ReceiverAccess {
  url: string;
  pin: TlsPin;
  writerKey: Buffer;
  pruneToken: string;
}

/**
 * A destination that is strackt's receiver on a server of the customer's. Agents and the control plane
 * write and read through URLs signed with the writer key (create and read, never overwrite or delete);
 * only deleting uses the prune token, which never leaves the control plane.
 */
export class ReceiverStore implements SnapshotStore {
  readonly prefix = '';
  readonly pin: TlsPin;

  constructor(private readonly access: ReceiverAccess) {
    this.pin = access.pin;
  }

  private signed(action: WriterAction, key: string, maxBytes?: number): string {
    return signedObjectUrl(this.access.url, this.access.writerKey, action, key, urlTtlSeconds, maxBytes);
  }

  private async call(action: WriterAction, key: string, body?: unknown, maxBytes?: number) {
    return receiverRequest(new URL(this.signed(action, key, maxBytes)), this.pin, {
      method: action.split(' ')[0]!,
      ...(body !== undefined && {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      }),
      // Completing joins the parts on the receiver's disk: a few seconds a GiB.
      timeoutMs: action === 'POST complete' ? 600_000 : 30_000,
    });
  }

  /** A receiver has no upload ids; this one only tells this snapshot's upload apart in strackt's records. */
  createUpload(): Promise<string> {
    return Promise.resolve(`receiver-${randomBytes(8).toString('hex')}`);
  }

  partUrls(key: string, _uploadId: string, partNumbers: number[]) {
    return Promise.resolve(
      partNumbers.map((partNumber) => ({
        partNumber,
        url: this.signed(`PUT part=${partNumber}`, key, maxPartBytes),
      })),
    );
  }

  async uploadedParts(key: string): Promise<StoredPart[]> {
    const answer = await this.call('GET parts', key);
    if (answer.status !== 200) throw receiverError(answer, `listing the parts of ${key}`);
    return (JSON.parse(answer.body.toString('utf8')) as { parts: StoredPart[] }).parts;
  }

  async completeUpload(
    key: string,
    _uploadId: string,
    parts: { partNumber: number; etag: string }[],
    whole: { size: number; sha256: string },
  ): Promise<void> {
    // Signed with the size the control plane expects: the receiver joins only parts adding up to it.
    const answer = await this.call('POST complete', key, { parts, ...whole }, whole.size);
    if (answer.status !== 201) throw receiverError(answer, `completing ${key}`);
  }

  async abortUpload(key: string): Promise<void> {
    const answer = await this.call('DELETE upload', key);
    if (answer.status !== 204) throw receiverError(answer, `dropping the upload of ${key}`);
  }

  putUrl(key: string, maxBytes: number) {
    return Promise.resolve(this.signed('PUT', key, maxBytes));
  }

  getUrl(key: string) {
    return Promise.resolve(this.signed('GET', key));
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    const answer = await receiverRequest(new URL(this.signed('PUT', key, bytes.length)), this.pin, {
      method: 'PUT',
      // The receiver keeps a whole object only if it hashes to what the writer announced.
      headers: { 'x-strackt-sha256': createHash('sha256').update(bytes).digest('hex') },
      body: bytes,
      timeoutMs: 120_000,
    });
    if (answer.status !== 201) throw receiverError(answer, `storing ${key}`);
  }

  async size(key: string): Promise<number | undefined> {
    const answer = await receiverRequest(new URL(this.signed('GET', key)), this.pin, { method: 'HEAD' });
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw receiverError(answer, `showing ${key}`);
    return Number(answer.headers['content-length']);
  }

  readStart(key: string, bytes: number): Promise<Buffer | undefined> {
    return this.readRange(key, 0, bytes);
  }

  async readRange(key: string, start: number, bytes: number): Promise<Buffer | undefined> {
    const answer = await receiverRequest(new URL(this.signed('GET', key)), this.pin, {
      method: 'GET',
      headers: { range: `bytes=${start}-${start + bytes - 1}` },
    });
    if (answer.status === 404) return undefined;
    if (answer.status === 206) return answer.body.subarray(0, bytes);
    // A whole object for a range it did not honour: the range is then cut from it.
    if (answer.status === 200) return answer.body.subarray(start, start + bytes);
    throw receiverError(answer, `reading ${key}`);
  }

  async remove(key: string): Promise<void> {
    const answer = await receiverRequest(objectUrl(this.access.url, key), this.pin, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${this.access.pruneToken}` },
    });
    if (answer.status !== 204 && answer.status !== 404) throw receiverError(answer, `deleting ${key}`);
  }

  /** The complete objects under `prefix` (never an unfinished upload), with the prune token. */
  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    const url = receiverUrl(this.access.url, 'objects');
    url.searchParams.set('prefix', prefix);
    const answer = await receiverRequest(url, this.pin, {
      method: 'GET',
      headers: { authorization: `Bearer ${this.access.pruneToken}` },
    });
    if (answer.status !== 200) throw receiverError(answer, `listing ${prefix}`);
    return (JSON.parse(answer.body.toString('utf8')) as { objects: { key: string; size: number }[] }).objects;
  }

  /** The receiver drops its own abandoned uploads (ObjectStore.sweep, after three days); nothing to do from here. */
  sweepUploads(): Promise<void> {
    return Promise.resolve();
  }
}
