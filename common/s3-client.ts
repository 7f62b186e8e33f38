import { S3Client } from '@aws-sdk/client-s3';

export interface S3Location {
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

/**
 * A client that works against every S3-compatible provider: the SDK's default CRC checksums (since
 * early 2025) are rejected by several (B2, R2, older MinIO), so they are sent only when an operation
 * requires them and integrity is checked by our own hashes instead.
 */
export function createS3Client(location: S3Location): S3Client {
  return new S3Client({
    ...(location.endpoint && { endpoint: location.endpoint }),
    region: location.region,
    credentials: { accessKeyId: location.accessKeyId, secretAccessKey: location.secretAccessKey },
    forcePathStyle: location.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
