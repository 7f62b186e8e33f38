import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DomainError } from '../common/errors.ts';
import { createS3Client, type S3Location } from '../common/s3-client.ts';
import { classifyProbeError, type ProbeContext, type ProbeStep } from './probe-errors.ts';

// Someone is waiting on the answer, and a wrong endpoint must say so in seconds, not after SDK retries.
const totalTimeoutMs = 10_000;
const limits = { connectionTimeoutMs: 3_000, requestTimeoutMs: 5_000, maxAttempts: 1 };
const probeBytes = 64;

/** Where a check writes: beside the team's data, under a name no snapshot will ever have. */
export function probeKey(prefix: string): string {
  const name = `.strackt-probe/${randomBytes(8).toString('hex')}`;
  return prefix ? `${prefix.replace(/\/$/, '')}/${name}` : name;
}

/** The host:port a request goes to, as configured, for messages: never the URL, which could carry more. */
export function endpointHost(location: S3Location, bucket: string): string {
  const url = location.endpoint ? new URL(location.endpoint) : undefined;
  const host = url?.hostname ?? `s3.${location.region}.amazonaws.com`;
  const port = url?.port || (url?.protocol === 'http:' ? '80' : '443');
  return `${location.forcePathStyle ? host : `${bucket}.${host}`}:${port}`;
}

/**
 * Proves a destination works for what backups do with it: writes a small random object under the
 * prefix, reads it back and compares, then deletes it. Any failure becomes a 422 DomainError saying which
 * step failed and why (probe-errors.ts); messages are built from fixed text, the configured host and the
 * provider's error code, so the secret key cannot reach them.
 */
export async function checkDestination(location: S3Location, bucket: string, prefix: string): Promise<void> {
  const key = probeKey(prefix);
  const context: ProbeContext = {
    host: endpointHost(location, bucket),
    bucket,
    prefix,
    key,
    region: location.region,
    pathStyle: location.forcePathStyle,
    timeoutMs: totalTimeoutMs,
  };
  const client = createS3Client(location, limits);
  const abortSignal = AbortSignal.timeout(totalTimeoutMs);
  const step = async <T>(name: ProbeStep, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw classifyProbeError(err, name, context);
    }
  };
  const written = randomBytes(probeBytes);
  try {
    await step('write', () =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: written }), { abortSignal }),
    );
    // Once the object exists it is deleted whatever the read found, so a failed check leaves nothing.
    const read = await step('read', () => readProbe(client, bucket, key, abortSignal)).then(
      (bytes) => ({ bytes }),
      (error: DomainError) => ({ error }),
    );
    const deleteError = await step('delete', () =>
      client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }),
    ).then(
      () => undefined,
      (error: DomainError) => error,
    );
    // The first step that failed is the one to fix; a delete failing after a failed read follows from it.
    if ('error' in read) throw read.error;
    if (deleteError) throw deleteError;
    if (!read.bytes.equals(written)) {
      throw new DomainError(
        'invalid',
        'readback_mismatch',
        `the probe object written to bucket "${bucket}" at ${context.host} read back different ` +
          `(${written.length} bytes written, ${read.bytes.length} read): the endpoint does not return what it stores`,
        'endpoint',
      );
    }
  } finally {
    client.destroy();
  }
}

/** The probe's bytes, reading at most one byte more than was written: an endpoint may send anything. */
async function readProbe(client: S3Client, bucket: string, key: string, abortSignal: AbortSignal) {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of (res.Body as Readable | undefined) ?? []) {
    chunks.push(Buffer.from(chunk as Uint8Array));
    size += (chunk as Uint8Array).length;
    if (size > probeBytes) break;
  }
  return Buffer.concat(chunks).subarray(0, probeBytes + 1);
}
