import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.ts';
import { checkKey, ObjectStore, StoreError } from './object-store.ts';
import { requestedAction, signObjectUrl, type WriterAction } from './signed-urls.ts';

interface Credentials {
  writerKey: string;
  pruneTokenSha256: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const same = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

// Enrolment and completion bodies: a completion lists up to 10,000 parts with their ETags.
const maxJsonBody = 1 << 20;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += (chunk as Buffer).toString();
    if (text.length > maxJsonBody) throw new StoreError(413, 'too_large', 'the body is too large');
  }
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // said below
  }
  throw new StoreError(400, 'bad_json', 'the body is not a JSON object');
}

function bodyLength(req: IncomingMessage): number {
  const length = Number(req.headers['content-length']);
  if (!req.headers['content-length'] || !Number.isSafeInteger(length))
    throw new StoreError(411, 'length_required', 'an upload needs a Content-Length');
  return length;
}

export interface ReceiverOptions {
  dataDir: string;
  cert: string;
  key: string;
  log: Logger;
}

/**
 * The receiver: an HTTPS server over an ObjectStore. Two credentials, both issued by the control plane
 * at enrolment: URLs signed with the writer key may create and read objects, never overwrite or delete
 * them (append-only: a compromised server cannot destroy earlier backups); the prune token, kept only
 * in the control plane's vault, may also list and delete (retention).
 */
export class Receiver {
  readonly store: ObjectStore;
  private credentials: Credentials | undefined;
  private enrolmentCode: string | undefined;
  private server: https.Server | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReceiverOptions) {
    this.store = new ObjectStore(options.dataDir);
  }

  private get credentialsPath(): string {
    return join(this.options.dataDir, 'credentials.json');
  }

  /** Loads the credentials, or makes the one-time enrolment code a first start prints. */
  async prepare(): Promise<{ enrolmentCode?: string }> {
    await mkdir(this.options.dataDir, { recursive: true, mode: 0o700 });
    const saved = await readFile(this.credentialsPath, 'utf8').catch(() => undefined);
    if (saved) {
      this.credentials = JSON.parse(saved) as Credentials;
      return {};
    }
    const codePath = join(this.options.dataDir, 'enrolment-code');
    this.enrolmentCode = await readFile(codePath, 'utf8').catch(async () => {
      const code = randomBytes(18).toString('base64url');
      await writeFile(codePath, code, { mode: 0o600 });
      return code;
    });
    return { enrolmentCode: this.enrolmentCode };
  }

  /** Unfinished uploads are dropped after three days untouched; checked at start and then hourly. */
  private sweepEvery(): void {
    const sweep = () =>
      void this.store
        .sweep(3 * 24 * 3600 * 1000)
        .then(
          (removed) => removed && this.options.log.info({ removed }, 'dropped files of abandoned uploads'),
        )
        .catch((err: unknown) => this.options.log.error({ err }, 'could not sweep abandoned uploads'));
    sweep();
    this.sweeper = setInterval(sweep, 3600 * 1000).unref();
  }

  async listen(host: string, port: number): Promise<number> {
    this.sweepEvery();
    this.server = https.createServer({ cert: this.options.cert, key: this.options.key }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    return (this.server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return new Promise((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
  }

  private fail(res: ServerResponse, err: unknown): void {
    const known = err instanceof StoreError;
    if (!known) this.options.log.error({ err }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = known ? err.status : 500;
    const body = {
      error: { code: known ? err.code : 'internal', message: known ? err.message : 'internal error' },
    };
    res
      .writeHead(status, { 'content-type': 'application/json', connection: 'close' })
      .end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://receiver');
    if (url.pathname === '/enrol' && req.method === 'POST') return this.enrol(req, res);
    if (!this.credentials) throw new StoreError(503, 'not_enrolled', 'this receiver is not enrolled yet');
    if (url.pathname === '/objects' && req.method === 'GET') {
      this.requirePrune(req);
      const objects = await this.store.list(url.searchParams.get('prefix') ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ objects }));
      return;
    }
    if (!url.pathname.startsWith('/objects/'))
      throw new StoreError(404, 'no_route', `no route ${req.method} ${url.pathname}`);
    const key = checkKey(decodeURIComponent(url.pathname.slice('/objects/'.length)));
    const method = req.method ?? 'GET';
    const action = requestedAction(method, url.searchParams);
    const asPrune = this.isPrune(req);
    if (!asPrune) this.requireWriterSignature(url, action, key);

    if (action.startsWith('PUT part=')) {
      const part = await this.store.putPart(key, Number(url.searchParams.get('part')), bodyLength(req), req);
      res
        .writeHead(200, { etag: `"${part.etag}"`, 'content-type': 'application/json' })
        .end(JSON.stringify(part));
      return;
    }
    if (action === 'GET parts') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ parts: await this.store.listParts(key) }));
      return;
    }
    if (action === 'POST complete') {
      const body = await readJson(req);
      const valid =
        Array.isArray(body.parts) &&
        body.parts.every(
          (p: unknown) =>
            typeof (p as { partNumber?: unknown }).partNumber === 'number' &&
            typeof (p as { etag?: unknown }).etag === 'string',
        ) &&
        Number.isSafeInteger(body.size) &&
        typeof body.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(body.sha256);
      if (!valid)
        throw new StoreError(
          400,
          'bad_complete',
          'completing takes { parts: [{ partNumber, etag }], size, sha256 }',
        );
      const state = await this.store.completeUpload(key, {
        parts: (body.parts as { partNumber: number; etag: string }[]).map((p) => ({
          partNumber: p.partNumber,
          etag: p.etag.replace(/"/g, ''),
        })),
        size: body.size as number,
        sha256: body.sha256 as string,
      });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(state));
      return;
    }
    if (action === 'DELETE upload') {
      await this.store.abortUpload(key);
      res.writeHead(204).end();
      return;
    }
    if (method === 'PUT') {
      if (asPrune) throw new StoreError(403, 'forbidden', 'objects are written with a writer URL');
      const length = bodyLength(req);
      const total = Number(req.headers['x-strackt-total'] ?? length);
      // Without an offset a PUT is a whole upload: it starts over whatever an earlier try left.
      const restart = req.headers['x-strackt-offset'] === undefined;
      const offset = Number(req.headers['x-strackt-offset'] ?? 0);
      const hash = String(req.headers['x-strackt-sha256'] ?? '');
      if (!Number.isSafeInteger(total) || total < 0 || !Number.isSafeInteger(offset) || offset < 0)
        throw new StoreError(
          400,
          'bad_range',
          'X-Strackt-Total and X-Strackt-Offset must be whole numbers of bytes',
        );
      if (!/^[0-9a-f]{64}$/.test(hash))
        throw new StoreError(400, 'bad_hash', 'X-Strackt-SHA256 must be 64 hex digits');
      const state = await this.store.append(key, { offset, length, total, sha256: hash, body: req, restart });
      res
        .writeHead(state.complete ? 201 : 202, { 'content-type': 'application/json' })
        .end(JSON.stringify(state));
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      const state = await this.store.state(key);
      if (!state?.complete) {
        res.writeHead(404, {
          'x-strackt-uploaded': String(state?.size ?? 0),
          'content-type': 'application/json',
        });
        res.end(
          method === 'HEAD'
            ? undefined
            : JSON.stringify({ error: { code: 'not_found', message: `no object ${key}` } }),
        );
        return;
      }
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(range[2] ? Number(range[2]) : state.size - 1, state.size - 1);
        if (start > end) throw new StoreError(416, 'bad_range', `the object has ${state.size} bytes`);
        res.writeHead(206, {
          'content-length': end - start + 1,
          'content-range': `bytes ${start}-${end}/${state.size}`,
        });
        if (method === 'HEAD') return void res.end();
        this.store.read(key, { start, end }).pipe(res);
        return;
      }
      res.writeHead(200, { 'content-length': state.size, 'accept-ranges': 'bytes' });
      if (method === 'HEAD') return void res.end();
      this.store.read(key).pipe(res);
      return;
    }
    if (method === 'DELETE') {
      if (!asPrune)
        throw new StoreError(
          403,
          'append_only',
          'writer URLs cannot delete: this receiver is append-only for writers',
        );
      await this.store.remove(key);
      res.writeHead(204).end();
      return;
    }
    throw new StoreError(405, 'method_not_allowed', `${method} is not allowed on objects`);
  }

  private isPrune(req: IncomingMessage): boolean {
    const token = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token) return false;
    if (!same(sha256(token), this.credentials!.pruneTokenSha256))
      throw new StoreError(401, 'bad_credentials', 'the prune token is not this receiver’s');
    return true;
  }

  private requirePrune(req: IncomingMessage): void {
    if (!this.isPrune(req)) throw new StoreError(401, 'bad_credentials', 'listing needs the prune token');
  }

  private requireWriterSignature(url: URL, action: string, key: string): void {
    const expires = Number(url.searchParams.get('expires'));
    const signature = url.searchParams.get('signature') ?? '';
    if (!signature)
      throw new StoreError(401, 'bad_credentials', 'a signed URL or the prune token is required');
    if (!Number.isSafeInteger(expires) || expires < Date.now() / 1000)
      throw new StoreError(401, 'expired', 'the signed URL has expired');
    const expected = signObjectUrl(
      Buffer.from(this.credentials!.writerKey, 'base64'),
      action as WriterAction,
      key,
      expires,
    );
    if (!same(signature, expected))
      throw new StoreError(401, 'bad_credentials', 'the URL’s signature does not match');
  }

  /** One time: the control plane, having pinned this receiver's certificate, installs its credentials. */
  private async enrol(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.credentials) throw new StoreError(409, 'enrolled', 'this receiver is already enrolled');
    const body = await readJson(req);
    if (typeof body.code !== 'string' || !same(body.code, this.enrolmentCode ?? ''))
      throw new StoreError(401, 'bad_credentials', 'wrong enrolment code');
    if (typeof body.writerKey !== 'string' || Buffer.from(body.writerKey, 'base64').length !== 32)
      throw new StoreError(400, 'bad_writer_key', 'writerKey must be 32 bytes in base64');
    if (typeof body.pruneToken !== 'string' || body.pruneToken.length < 32)
      throw new StoreError(400, 'bad_prune_token', 'pruneToken must be at least 32 characters');
    const credentials: Credentials = { writerKey: body.writerKey, pruneTokenSha256: sha256(body.pruneToken) };
    await writeFile(`${this.credentialsPath}.tmp`, JSON.stringify(credentials), { mode: 0o600 });
    await rename(`${this.credentialsPath}.tmp`, this.credentialsPath);
    await rm(join(this.options.dataDir, 'enrolment-code'), { force: true });
    this.credentials = credentials;
    this.enrolmentCode = undefined;
    this.options.log.info('enrolled');
    res.writeHead(204).end();
  }
}
