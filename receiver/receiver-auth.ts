import { createHash, timingSafeEqual } from 'node:crypto';
import { signObjectUrl, type WriterAction } from '../storage/receiver-urls.ts';
import { StoreError } from './object-keys.ts';

/** What the control plane installed at enrolment: the writer key, and the prune token's hash only. */
export interface Credentials {
  writerKey: string;
  pruneTokenSha256: string;
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
export const same = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** Whether the request carries the prune token; another bearer token is refused, not ignored. */
export function isPrune(credentials: Credentials, authorization: string | undefined): boolean {
  const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
  if (!token) return false;
  if (!same(sha256(token), credentials.pruneTokenSha256))
    throw new StoreError(401, 'bad_credentials', 'the prune token is not this receiver’s');
  return true;
}

/**
 * Checks a writer URL: signed by the writer key for this action on this object, not expired. A write
 * must carry its signed bound; answers it (bytes), or undefined for a read or a step that stores nothing.
 */
export function writerBound(
  credentials: Credentials,
  url: URL,
  action: string,
  key: string,
): number | undefined {
  const expires = Number(url.searchParams.get('expires'));
  const signature = url.searchParams.get('signature') ?? '';
  const max = url.searchParams.get('max');
  if (!signature) throw new StoreError(401, 'bad_credentials', 'a signed URL or the prune token is required');
  if (!Number.isSafeInteger(expires) || expires < Date.now() / 1000)
    throw new StoreError(401, 'expired', 'the signed URL has expired');
  const maxBytes = max === null ? undefined : Number(max);
  if (maxBytes !== undefined && (!/^\d{1,15}$/.test(max!) || !Number.isSafeInteger(maxBytes)))
    throw new StoreError(401, 'bad_credentials', 'the URL’s bound is not a number of bytes');
  const expected = signObjectUrl(
    Buffer.from(credentials.writerKey, 'base64'),
    action as WriterAction,
    key,
    expires,
    maxBytes,
  );
  if (!same(signature, expected))
    throw new StoreError(401, 'bad_credentials', 'the URL’s signature does not match');
  const writes = action === 'PUT' || action.startsWith('PUT part=') || action === 'POST complete';
  if (writes && maxBytes === undefined)
    throw new StoreError(401, 'bad_credentials', 'a writer URL for a write carries its signed bound (max)');
  return maxBytes;
}
