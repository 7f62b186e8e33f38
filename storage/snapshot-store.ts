import type { TlsPin } from './pinned-client.ts';

export interface StoredPart {
  partNumber: number;
  etag: string;
  size: number;
}

/**
 * A destination's objects as backups, restores and retention use them, whatever the destination's
 * kind: a bucket (BucketStore) or a customer's receiver (ReceiverStore). Credentials stay inside;
 * agents get short-lived URLs for one object (and, for a receiver, how to trust its certificate).
 */
export interface SnapshotStore {
  /** Where under the destination strackt's objects go: '' or a path without slashes at its ends. */
  readonly prefix: string;
  /** What an agent needs besides a URL: the receiver's trusted certificate; none for a bucket. */
  readonly pin: TlsPin | undefined;
  /** Starts a multipart upload of `key` and answers its id. */
  createUpload(key: string): Promise<string>;
  partUrls(
    key: string,
    uploadId: string,
    partNumbers: number[],
  ): Promise<{ partNumber: number; url: string }[]>;
  uploadedParts(key: string, uploadId: string): Promise<StoredPart[]>;
  /**
   * Makes the object of the listed parts, of `size` bytes hashing to `sha256`. Done again after it
   * succeeded, it changes nothing (the caller checks the object's size).
   */
  completeUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    whole: { size: number; sha256: string },
  ): Promise<void>;
  abortUpload(key: string, uploadId: string): Promise<void>;
  /** A URL to PUT one whole object of at most `maxBytes` (a receiver enforces it; S3 presigning cannot). */
  putUrl(key: string, maxBytes: number): Promise<string>;
  getUrl(key: string): Promise<string>;
  /** Stores a whole object the control plane made (a repacked pack: some MiB), new or over itself. */
  put(key: string, bytes: Buffer): Promise<void>;
  /** The object's size, or undefined when there is no such object. */
  size(key: string): Promise<number | undefined>;
  /** The object's first `bytes` bytes, or undefined when there is no such object. */
  readStart(key: string, bytes: number): Promise<Buffer | undefined>;
  /** `bytes` bytes of the object from `start` (fewer past its end), or undefined when there is no such object. */
  readRange(key: string, start: number, bytes: number): Promise<Buffer | undefined>;
  /** Deletes an object; one already gone is not an error. */
  remove(key: string): Promise<void>;
  /** Drops unfinished uploads under `prefix` that none of `owned` names and that are older than `olderThanMs`. */
  sweepUploads(prefix: string, owned: Set<string>, olderThanMs: number): Promise<void>;
}
