import { createHmac } from 'node:crypto';

// The receiver's multipart limits, S3's count: agents send 16 MiB parts, so 64 MiB leaves room.
export const maxPartBytes = 64 * 1024 * 1024;
export const maxPartNumber = 10_000;

/**
 * What a writer URL allows: one method on one object, or one step of a multipart upload of it
 * ("PUT part=3", "GET parts", "POST complete", "DELETE upload"). A URL signed for one action is
 * refused for any other.
 */
export type WriterAction =
  'PUT' | 'GET' | `PUT part=${number}` | 'GET parts' | 'POST complete' | 'DELETE upload';

/**
 * The signature a writer URL carries: HMAC-SHA256 with the writer key over action, object name,
 * expiry and, for a write, the most bytes it may store. The control plane holds the key and signs URLs
 * for one object at a time, as it presigns S3 URLs; agents never hold the key, so they can neither
 * point a URL at another object nor raise its bound.
 */
export function signObjectUrl(
  writerKey: Buffer,
  action: WriterAction,
  key: string,
  expires: number,
  maxBytes?: number,
): string {
  return createHmac('sha256', writerKey)
    .update(`${action}\n${key}\n${expires}\n${maxBytes ?? ''}`)
    .digest('hex');
}

/** The query that names a multipart step in a URL, and back: the receiver reads the action from the URL it got. */
const stepQuery: Record<string, string> = {
  'GET parts': 'parts',
  'POST complete': 'complete',
  'DELETE upload': 'upload',
};

/**
 * A receiver URL for `action` on `key`, valid for `ttlSeconds`. A write carries its bound: a whole
 * object or a part at most `maxBytes`, a completion exactly `maxBytes` (the size the parts must add up to).
 */
export function signedObjectUrl(
  base: string,
  writerKey: Buffer,
  action: WriterAction,
  key: string,
  ttlSeconds: number,
  maxBytes?: number,
): string {
  const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
  const url = objectUrl(base, key);
  const part = /^PUT part=(\d+)$/.exec(action)?.[1];
  if (part) url.searchParams.set('part', part);
  else if (stepQuery[action]) url.searchParams.set(stepQuery[action], '');
  url.searchParams.set('expires', String(expires));
  if (maxBytes !== undefined) url.searchParams.set('max', String(maxBytes));
  url.searchParams.set('signature', signObjectUrl(writerKey, action, key, expires, maxBytes));
  return url.toString();
}

/** The action a request asks for, from its method and query ("DELETE parts" is no action: nothing is signed for it). */
export function requestedAction(method: string, query: URLSearchParams): string {
  const part = query.get('part');
  if (part !== null) return `${method} part=${part}`;
  const step = Object.values(stepQuery).find((name) => query.has(name));
  if (step) return `${method} ${step}`;
  return method === 'HEAD' ? 'GET' : method;
}

/** `path` on the receiver at `base` (a base URL with or without a path of its own). */
export function receiverUrl(base: string, path: string): URL {
  return new URL(path, base.endsWith('/') ? base : `${base}/`);
}

/** Where object `key` is on the receiver at `base`. */
export function objectUrl(base: string, key: string): URL {
  return receiverUrl(base, `objects/${key.split('/').map(encodeURIComponent).join('/')}`);
}
