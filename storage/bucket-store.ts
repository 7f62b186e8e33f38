import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { presignGet, presignPut, presignUploadPart } from './presign.ts';
import { s3ErrorName } from './probe-errors.ts';
import type { SnapshotStore } from './snapshot-store.ts';
import { sweepStaleUploads } from './stale-uploads.ts';
import { uploadedParts } from './uploaded-parts.ts';

const missing = (err: unknown) => ['NoSuchKey', 'NotFound'].includes(s3ErrorName(err));

/** A destination that is a bucket of any S3-compatible provider. */
export class BucketStore implements SnapshotStore {
  readonly pin = undefined;

  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
    readonly prefix: string,
  ) {}

  async createUpload(key: string): Promise<string> {
    const { UploadId } = await this.s3.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }),
    );
    return UploadId!;
  }

  partUrls(key: string, uploadId: string, partNumbers: number[]) {
    return Promise.all(
      partNumbers.map(async (partNumber) => ({
        partNumber,
        url: await presignUploadPart(this.s3, this.bucket, key, uploadId, partNumber),
      })),
    );
  }

  uploadedParts(key: string, uploadId: string) {
    return uploadedParts(this.s3, this.bucket, key, uploadId);
  }

  async completeUpload(key: string, uploadId: string, parts: { partNumber: number; etag: string }[]) {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      // A retry after a completion that did succeed finds no upload: the caller's size check decides.
      if (s3ErrorName(err) !== 'NoSuchUpload') throw err;
    }
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.s3.send(
      new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
    );
  }

  // A presigned S3 PUT cannot carry a bound (only an exact length); the bucket is the customer's own.
  putUrl(key: string, _maxBytes: number) {
    return presignPut(this.s3, this.bucket, key);
  }

  getUrl(key: string) {
    return presignGet(this.s3, this.bucket, key);
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes }));
  }

  async size(key: string): Promise<number | undefined> {
    try {
      return (await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))).ContentLength;
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  }

  readStart(key: string, bytes: number): Promise<Buffer | undefined> {
    return this.readRange(key, 0, bytes);
  }

  async readRange(key: string, start: number, bytes: number): Promise<Buffer | undefined> {
    try {
      const res = await this.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${start + bytes - 1}` }),
      );
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async sweepUploads(prefix: string, owned: Set<string>, olderThanMs: number): Promise<void> {
    await sweepStaleUploads(this.s3, this.bucket, prefix, owned, olderThanMs);
  }
}
