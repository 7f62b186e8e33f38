import http from 'node:http';
import https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { checkOutboundUrl, lookupFor, portOf } from './outbound-guard.ts';

export interface S3Location {
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

/**
 * Bounds for calls a person waits on (a connectivity check): the SDK's defaults retry and wait for
 * minutes, which turns a typo in an endpoint into a hung form.
 */
export interface S3ClientLimits {
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
}

/**
 * A client that works against every S3-compatible provider: the SDK's default CRC checksums (since
 * early 2025) are rejected by several (B2, R2, older MinIO), so they are sent only when an operation
 * requires them and integrity is checked by our own hashes instead.
 */
export function createS3Client(location: S3Location, limits?: S3ClientLimits): S3Client {
  // A team's endpoint is reached only at addresses the outbound guard allows, the very ones it checked.
  const endpoint = new URL(location.endpoint ?? `https://s3.${location.region}.amazonaws.com`);
  checkOutboundUrl(endpoint);
  const lookup = lookupFor(portOf(endpoint));
  const agents = { httpAgent: new http.Agent({ lookup }), httpsAgent: new https.Agent({ lookup }) };
  return new S3Client({
    ...(location.endpoint && { endpoint: location.endpoint }),
    region: location.region,
    credentials: { accessKeyId: location.accessKeyId, secretAccessKey: location.secretAccessKey },
    forcePathStyle: location.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      ...agents,
      ...(limits && {
        connectionTimeout: limits.connectionTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        // Otherwise an exceeded request timeout only logs a warning and the call keeps waiting.
        throwOnRequestTimeout: true,
      }),
    },
    ...(limits && { maxAttempts: limits.maxAttempts }),
  });
}
