import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Aborts multipart uploads under our prefix that no running snapshot owns and that are older than
 * `olderThanMs`. An upload left by a crash costs money and is invisible in a plain listing.
 */
export async function sweepStaleUploads(
  s3: S3Client,
  bucket: string,
  prefix: string,
  owned: Set<string>,
  olderThanMs: number,
  now = Date.now(),
): Promise<string[]> {
  const swept: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
    );
    for (const upload of page.Uploads ?? []) {
      const age = now - (upload.Initiated?.getTime() ?? now);
      if (!upload.UploadId || owned.has(upload.UploadId) || age < olderThanMs) continue;
      await s3.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
      );
      swept.push(upload.Key!);
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return swept;
}
