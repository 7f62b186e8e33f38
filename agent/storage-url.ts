import http from 'node:http';
import https from 'node:https';
import { pinnedRequest, type TlsPin } from '../storage/pinned-client.ts';

/**
 * A URL an agent may use on the storage for one object: presigned for a bucket, or signed for a
 * receiver, with how the receiver's certificate is trusted (the agent refuses any other).
 */
export interface StorageUrl {
  url: string;
  pin?: TlsPin;
}

export function storageRequest(
  target: StorageUrl,
  options: http.RequestOptions,
): Promise<http.ClientRequest> {
  const url = new URL(target.url);
  if (target.pin) return pinnedRequest(url, target.pin, options);
  return Promise.resolve((url.protocol === 'https:' ? https : http).request(url, options));
}

/** The error code a storage gave: S3's XML <Code>, or a receiver's JSON error. */
export function storageErrorCode(status: number | undefined, body: string): string {
  const xml = /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
  if (xml) return xml;
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    if (typeof code === 'string' && /^[a-z_]{1,40}$/.test(code)) return code;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${status}`;
}
