import { z } from 'zod';
import { outboundAllowed, outboundRefusedMessage } from './outbound-guard.ts';
import type { S3Location } from './s3-client.ts';

/** An http(s) URL naming only a host, port and path: credentials in it would end up in messages and logs. */
function isEndpointUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.hostname !== '' &&
    !url.username &&
    !url.password &&
    !url.search &&
    !url.hash
  );
}

export const endpointSchema = z
  .string()
  .max(2048)
  .refine(isEndpointUrl, 'must be an http:// or https:// URL without user, password, query or fragment')
  .refine(outboundAllowed, outboundRefusedMessage);

export const regionSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'must be 1-63 letters, digits, hyphens or underscores');

// AWS's rules for new buckets, which every S3-compatible provider accepts: they fit in a DNS name.
export const bucketSchema = z
  .string()
  .regex(
    /^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    'must be 3-63 lowercase letters, digits, dots or hyphens, start and end with a letter or digit, ' +
      'have no two dots in a row and not look like an IP address',
  );

// One spelling per place: 'backups/' is stored as 'backups', so keys are always prefix + '/' + name.
export const prefixSchema = z
  .string()
  .max(512)
  .regex(
    /^(?!\/)(?!.*\.\.)(?!.*\/\/)[^\\]*$/,
    'must not start with a slash or contain "..", "//" or backslashes',
  )
  // A separate check: a \p{} class needs the u flag, which the OpenAPI pattern cannot carry.
  .refine((prefix) => !/\p{Cc}/u.test(prefix), 'must not contain control characters')
  .transform((prefix) => prefix.replace(/\/$/, ''));

const printable = /^[\x21-\x7e]+$/;

export const accessKeyIdSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(printable, 'must be printable ASCII without spaces');

export const secretAccessKeySchema = z
  .string()
  .min(1)
  .max(256)
  .regex(printable, 'must be printable ASCII without spaces');

/** Everything needed to reach a destination's objects. */
export interface DestinationConnection {
  endpoint: string | null;
  region: string;
  bucket: string;
  prefix: string;
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
}

export const connectionFields = [
  'endpoint',
  'region',
  'bucket',
  'prefix',
  'pathStyle',
  'accessKeyId',
  'secretAccessKey',
] as const satisfies readonly (keyof DestinationConnection)[];

export function s3LocationOf(connection: DestinationConnection): S3Location {
  return {
    ...(connection.endpoint && { endpoint: connection.endpoint }),
    region: connection.region,
    accessKeyId: connection.accessKeyId,
    secretAccessKey: connection.secretAccessKey,
    forcePathStyle: connection.pathStyle,
  };
}
