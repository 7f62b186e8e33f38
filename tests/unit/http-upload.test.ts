import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PartUploadError, putFile } from '../../agent/http-upload.ts';
import { RateLimit } from '../../agent/rate-limit.ts';

// Not a whole number of the 1 MiB pieces the upload reads and writes in turn.
const object = randomBytes(5 * 1024 * 1024 + 4321);

let dir: string;
let file: string;
let server: http.Server;
let url: string;
/** The bodies the storage received, by path. */
const received = new Map<string, Buffer>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strackt-upload-'));
  file = join(dir, 'pack');
  await writeFile(file, object);
  server = http.createServer((req, res) => {
    if (req.url === '/refuses') {
      // Refused before the body is read, as S3 refuses a wrong signature (the rest drained unread).
      res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.set(req.url!, Buffer.concat(chunks));
      res.writeHead(200, { etag: '"stored"' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('putFile', () => {
  it('sends the whole file, byte for byte, and answers the ETag', async () => {
    assert.equal(await putFile({ url: `${url}/whole` }, file, object.length), '"stored"');
    assert.ok(received.get('/whole')?.equals(object), 'the storage holds the file as it is on disk');
  });

  it('sends two files at once without mixing their bytes', async () => {
    const other = join(dir, 'other');
    const bytes = randomBytes(3 * 1024 * 1024 + 7);
    await writeFile(other, bytes);
    await Promise.all([
      putFile({ url: `${url}/a` }, file, object.length),
      putFile({ url: `${url}/b` }, other, bytes.length),
    ]);
    assert.ok(received.get('/a')?.equals(object));
    assert.ok(received.get('/b')?.equals(bytes));
  });

  it('paces the bytes at the limit given', async () => {
    const limit = new RateLimit(4 * 1024 * 1024);
    const started = Date.now();
    await putFile({ url: `${url}/paced` }, file, object.length, { limit });
    // Six pieces, the first at once: the last may leave only once five MiB have had their time.
    assert.ok(Date.now() - started >= 1200, `${Date.now() - started} ms for 5 MiB at 4 MiB/s`);
    assert.ok(received.get('/paced')?.equals(object));
  });

  it('names the code of a storage that refuses before the body is sent', async () => {
    await assert.rejects(
      putFile({ url: `${url}/refuses` }, file, object.length),
      (err: PartUploadError) =>
        err instanceof PartUploadError && err.status === 403 && /AccessDenied/.test(err.message),
    );
  });

  it('fails at once, not at the storage timeout, for a file that cannot be read', async () => {
    const started = Date.now();
    await assert.rejects(
      putFile({ url: `${url}/missing` }, join(dir, 'missing'), 1024),
      (err: PartUploadError) => err instanceof PartUploadError && /ENOENT/.test(err.message),
    );
    assert.ok(Date.now() - started < 10_000);
    assert.equal(received.has('/missing'), false);
  });
});
