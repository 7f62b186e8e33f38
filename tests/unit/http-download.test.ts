import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { download, DownloadError, downloadRange, downloadSmall } from '../../agent/http-download.ts';
import { CertificateMismatchError } from '../../storage/pinned-client.ts';
import { storageRequest } from '../../agent/storage-url.ts';
import { receiverCertificate } from '../../receiver/tls.ts';

const object = randomBytes(5 * 1024 * 1024 + 123);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Serves `object` in 64 KiB writes, so reads see it piecemeal. */
function serveObject(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url !== '/bucket/data?X-Amz-Signature=abc') {
    res.writeHead(404).end('<Error><Code>NoSuchKey</Code></Error>');
    return;
  }
  res.writeHead(200, { 'content-length': object.length });
  let at = 0;
  const more = () => {
    while (at < object.length) {
      const piece = object.subarray(at, (at += 64 * 1024));
      if (!res.write(piece)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}

/** A raw TCP server answering every connection with `answer` (written in the pieces given), then closing. */
async function rawServer(...answer: (string | Buffer)[]): Promise<{ url: string; close: () => void }> {
  const server = net.createServer((socket) => {
    socket.once('data', async () => {
      for (const piece of answer) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
      socket.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}/o`, close: () => server.close() };
}

/** Reads a body the way the unpacker does: each chunk kept across awaits, used up before the next is asked for. */
async function digest(body: AsyncIterable<Buffer>): Promise<{ sha: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    await new Promise((r) => setTimeout(r, 1));
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha: hash.digest('hex'), bytes };
}

describe('download (reused read buffers)', () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer(serveObject);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  after(() => server.close());

  it('streams an object whole, with its length, each chunk valid until the next', async () => {
    const body = await download({ url: `${base}/bucket/data?X-Amz-Signature=abc` });
    assert.equal(body.length, object.length);
    assert.deepEqual(await digest(body), { sha: sha256(object), bytes: object.length });
  });

  it('gives a small object whole, though read buffers are reused', async () => {
    assert.equal(
      sha256(await downloadSmall({ url: `${base}/bucket/data?X-Amz-Signature=abc` })),
      sha256(object),
    );
    // Too large: refused, and its connection closed at once rather than left paused.
    await assert.rejects(
      downloadSmall({ url: `${base}/bucket/data?X-Amz-Signature=abc` }, 1000),
      /larger than the 1000 bytes expected/,
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await new Promise((r) => server.getConnections((_, n) => r(n))), 0);
  });

  it('refuses a pinned certificate on an http: URL, connecting nowhere', async () => {
    let connections = 0;
    server.on('connection', () => connections++);
    const pin = { fingerprint: Array(32).fill('AB').join(':') };
    await assert.rejects(download({ url: `${base}/bucket/data`, pin }), (err: Error) => {
      assert.ok(err instanceof CertificateMismatchError);
      assert.match(err.message, /not https/);
      return true;
    });
    await assert.rejects(
      storageRequest({ url: `${base}/bucket/data`, pin }, { method: 'GET' }),
      CertificateMismatchError,
    );
    assert.equal(connections, 0, 'not a byte sent in clear');
  });

  it('refuses anything but 200 with the status', async () => {
    const err = await download({ url: `${base}/bucket/other` }).catch((e: unknown) => e);
    assert.ok(err instanceof DownloadError);
    assert.equal(err.status, 404);
    assert.match(err.message, /HTTP 404/);
  });

  it('reads a byte range: asked with Range, taken only as the 206 of exactly those bytes', async () => {
    let asked = '';
    const ranged = await rawServer(
      'HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\n',
      'Content-Range: bytes 10-14/100\r\n\r\nhello',
    );
    const sniff = net.createServer((socket) =>
      socket.once('data', (d) => {
        asked = d.toString('latin1');
        socket.end(
          'HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nContent-Range: bytes 10-14/100\r\n\r\nhello',
        );
      }),
    );
    await new Promise<void>((r) => sniff.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(sniff.address() as net.AddressInfo).port}/o`;
      assert.equal((await downloadRange({ url }, { start: 10, end: 15 })).toString(), 'hello');
      assert.match(asked, /\r\nRange: bytes=10-14\r\n/);
      assert.equal((await downloadRange({ url: ranged.url }, { start: 10, end: 15 })).toString(), 'hello');
      // Other bytes than asked: the object whole (a storage ignoring Range), or another range.
      await assert.rejects(
        downloadRange({ url: `${base}/bucket/data?X-Amz-Signature=abc` }, { start: 10, end: 15 }),
        /HTTP 200/,
      );
      await assert.rejects(
        downloadRange({ url: ranged.url }, { start: 11, end: 16 }),
        /another range than asked/,
      );
      // The object ends inside the range asked (bytes 10-14 of 15): short, told as 416, not retried.
      const short = await rawServer(
        'HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\n',
        'Content-Range: bytes 10-14/15\r\n\r\nhello',
      );
      await assert.rejects(
        downloadRange({ url: short.url }, { start: 10, end: 20 }),
        (err) =>
          err instanceof DownloadError && err.status === 416 && /ends before the range/.test(err.message),
      );
      short.close();
    } finally {
      ranged.close();
      sniff.close();
    }
  });

  it('parses a head that arrives in pieces, and the body bytes that came with it', async () => {
    const raw = await rawServer(
      'HTTP/1.1 200 OK\r\nContent-Le',
      'ngth: 11\r\nX-A: b\r\n',
      '\r\nhello',
      ' world',
    );
    try {
      const chunks: Buffer[] = [];
      for await (const c of await download({ url: raw.url })) chunks.push(Buffer.from(c));
      assert.equal(Buffer.concat(chunks).toString(), 'hello world');
    } finally {
      raw.close();
    }
  });

  it('fails a body cut short, saying how much came', async () => {
    const raw = await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', Buffer.alloc(500, 1));
    try {
      await assert.rejects(digest(await download({ url: raw.url })), (err: Error) => {
        assert.ok(err instanceof DownloadError);
        assert.match(err.message, /closed after 500 of 1000 bytes/);
        return true;
      });
    } finally {
      raw.close();
    }
  });

  it('refuses an answer without a Content-Length', async () => {
    const raw = await rawServer(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    try {
      await assert.rejects(download({ url: raw.url }), /without a Content-Length/);
    } finally {
      raw.close();
    }
  });

  it('fails on a connection refused, and on an abort while connecting or mid-body with the abort reason', async () => {
    const closed = await rawServer();
    closed.close();
    await assert.rejects(download({ url: closed.url }), (err: Error) => err instanceof DownloadError);

    const early = new AbortController();
    const connecting = download({ url: `${base}/bucket/data?X-Amz-Signature=abc` }, early.signal);
    early.abort(new Error('cancelled while connecting'));
    await assert.rejects(connecting, /cancelled while connecting/);

    const controller = new AbortController();
    const body = await download({ url: `${base}/bucket/data?X-Amz-Signature=abc` }, controller.signal);
    let bytes = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of body) {
          bytes += chunk.length;
          controller.abort(new Error('cancelled by the test'));
        }
      })(),
      /cancelled by the test/,
    );
    assert.ok(bytes < object.length);
  });
});

describe('download over TLS', () => {
  let dir: string;
  let server: https.Server;
  let url: string;
  let fingerprint: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strackt-dl-'));
    const tls = await receiverCertificate(dir);
    fingerprint = tls.fingerprint;
    server = https.createServer({ cert: tls.cert, key: tls.key }, serveObject);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/bucket/data?X-Amz-Signature=abc`;
  });
  after(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams from a receiver showing the pinned certificate', async () => {
    const body = await download({ url, pin: { fingerprint } });
    assert.deepEqual(await digest(body), { sha: sha256(object), bytes: object.length });
  });

  it('sends nothing to a host showing another certificate', async () => {
    const other = (fingerprint.startsWith('00') ? '11' : '00') + fingerprint.slice(2);
    await assert.rejects(download({ url, pin: { fingerprint: other } }), CertificateMismatchError);
  });

  it('checks an unpinned HTTPS host against the system CAs (a self-signed one fails)', async () => {
    await assert.rejects(
      download({ url }),
      (err: Error) => err instanceof DownloadError && /self.signed/i.test(err.message),
    );
  });
});
