import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import type { RateLimit } from './rate-limit.ts';

export class PartUploadError extends Error {
  override name = 'PartUploadError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * PUTs a file to a presigned URL and answers the ETag. Streamed from disk with node:http rather than
 * fetch: no part is ever held in memory whole (16 MiB each, two in flight, and a backup's worth of
 * them waiting for the garbage collector is how the agent once peaked at 461 MiB).
 */
export async function putFile(url: string, path: string, size: number, limit?: RateLimit): Promise<string> {
  const request = url.startsWith('https:') ? https.request : http.request;
  const req = request(url, { method: 'PUT', headers: { 'content-length': String(size) } });
  // A storage that stops answering must not hold the backup forever: the activity retries instead.
  req.setTimeout(120_000, () => req.destroy(new Error('no answer from the storage in 120 s')));
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  answered.catch(() => {}); // awaited below; a refusal may come before the body is sent
  try {
    const body = createReadStream(path, { highWaterMark: 1 << 20 });
    const sent = limit ? pipeline(body, limit.stream(), req) : pipeline(body, req);
    sent.catch(() => {}); // a storage that refuses early closes the connection: its answer says why
    const res = await answered;
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    if (res.statusCode !== 200) {
      const text = Buffer.concat(chunks).toString('utf8');
      const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.statusCode}`;
      throw new PartUploadError(`the storage refused the upload: ${code}`, res.statusCode);
    }
    await sent;
    return String(res.headers.etag ?? '');
  } catch (err) {
    if (err instanceof PartUploadError) throw err;
    req.destroy();
    throw new PartUploadError(`uploading failed: ${(err as Error).message}`);
  }
}
