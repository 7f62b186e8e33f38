import { GetObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

// Agents get short-lived URLs for exactly the objects of the snapshot they are writing or restoring,
// never the bucket credentials: a compromised server can then add one snapshot, or read the one being
// restored onto it, but not read or delete others.
const expiresIn = 3600;

export function presignUploadPart(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  partNumber: number,
) {
  return getSignedUrl(
    s3,
    new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }),
    {
      expiresIn,
    },
  );
}

export function presignPut(s3: S3Client, bucket: string, key: string) {
  return getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
}

export function presignGet(s3: S3Client, bucket: string, key: string) {
  return getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
}
