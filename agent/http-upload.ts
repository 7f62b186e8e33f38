import { open } from 'node:fs/promises';
import type http from 'node:http';
import { CertificateMismatchError } from '../storage/pinned-client.ts';
import type { RateLimit } from './rate-limit.ts';
import { storageErrorCode, storageRequest, type StorageUrl } from './storage-url.ts';

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
 * PUTs a file to a presigned or signed URL and answers the ETag. Streamed from disk with node:http
 * rather than fetch: no part is ever held in memory whole (16 MiB each, two in flight, and a backup's
 * worth of them waiting for the garbage collector is how the agent once peaked at 461 MiB).
 * `sha256` (hex) of a whole object is announced to a receiver, which keeps the object only if it
 * matches; a bucket is not sent the header (it is not part of what was presigned).
 */
export async function putFile(
  target: StorageUrl,
  path: string,
  size: number,
  { limit, sha256 }: { limit?: RateLimit; sha256?: string } = {},
): Promise<string> {
  const headers: http.OutgoingHttpHeaders = { 'content-length': String(size) };
  if (target.pin && sha256) headers['x-strackt-sha256'] = sha256;
  let req: http.ClientRequest;
  try {
    req = await storageRequest(target, { method: 'PUT', headers });
  } catch (err) {
    if (err instanceof CertificateMismatchError) throw err;
    throw new PartUploadError(`uploading failed: ${(err as Error).message}`);
  }
  // A storage that stops answering must not hold the backup forever: the activity retries instead.
  req.setTimeout(120_000, () => req.destroy(new Error('no answer from the storage in 120 s')));
  let responded = false;
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', (res: http.IncomingMessage) => {
      responded = true;
      resolve(res);
    });
    req.once('error', reject);
  });
  answered.catch(() => {}); // awaited below; a refusal may come before the body is sent
  try {
    // A storage that refuses early closes the connection: its answer says why. Unanswered, a file
    // that cannot be read ends the request, or the answer would wait for the rest of the body.
    sendFile(path, req, limit).catch((err: Error) => {
      if (!responded) req.destroy(err);
    });
    const res = await answered;
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    if (res.statusCode !== 200 && res.statusCode !== 201) {
      const code = storageErrorCode(res.statusCode, Buffer.concat(chunks).toString('utf8'));
      throw new PartUploadError(`the storage refused the upload: ${code}`, res.statusCode);
    }
    // A 2xx means the storage has the whole body; how our side of the socket closed no longer matters
    // (awaiting it once turned a stored manifest into "Premature close", and its retry into a refusal).
    return String(res.headers.etag ?? '');
  } catch (err) {
    if (err instanceof PartUploadError) throw err;
    req.destroy();
    throw new PartUploadError(`uploading failed: ${(err as Error).message}`);
  }
}

const pieceBytes = 1 << 20;

/**
 * The file's bytes written to the request, 1 MiB at a time through two buffers in turn: each read
 * again only once the request has written it out, while the other fills. A stream read the file
 * into a fresh buffer per MiB, which the garbage collector then had to take back: a pack is 16 MiB.
 */
async function sendFile(path: string, req: http.ClientRequest, limit?: RateLimit): Promise<void> {
  const file = await open(path, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(pieceBytes), Buffer.allocUnsafe(pieceBytes)];
    let written: Promise<void> = Promise.resolve();
    for (let at = 0, turn = 0; ; turn ^= 1) {
      const { bytesRead } = await file.read(buffers[turn]!, 0, pieceBytes, at);
      if (bytesRead === 0) break;
      at += bytesRead;
      await limit?.wait(bytesRead);
      await written;
      written = new Promise((resolve, reject) =>
        req.write(buffers[turn]!.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())),
      );
      written.catch(() => {}); // awaited before the next write, or once the file is read
    }
    await written;
  } finally {
    await file.close();
  }
  req.end();
}
