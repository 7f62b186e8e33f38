import { ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';

/** Every part a multipart upload holds, page by page (ListParts answers at most 1,000 at a time). */
export async function uploadedParts(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
): Promise<{ partNumber: number; etag: string; size: number }[]> {
  const parts: { partNumber: number; etag: string; size: number }[] = [];
  let marker: string | undefined;
  do {
    const page = await s3.send(
      new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
    );
    for (const p of page.Parts ?? [])
      parts.push({ partNumber: p.PartNumber!, etag: p.ETag ?? '', size: p.Size ?? 0 });
    marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
  } while (marker);
  return parts;
}
