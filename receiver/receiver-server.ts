import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { Logger } from '../common/log.ts';
import { objectRoutes } from './object-routes.ts';
import { same, sha256, type Credentials } from './receiver-auth.ts';
import { StoreError } from './object-keys.ts';
import { ObjectStore } from './object-store.ts';

// Enrolment and completion bodies: a completion lists up to 10,000 parts with their ETags.
const maxJsonBody = 1 << 20;

const enrolment = z.object({ code: z.string(), writerKey: z.string(), pruneToken: z.string() });

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

  /** The HTTP API: enrolment, then objects (object-routes.ts). */
  app() {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.onError((err, c) => {
      const known = err instanceof StoreError;
      if (!known) this.options.log.error({ err }, 'request failed');
      // An object already streaming cannot turn into an error answer: the connection is cut instead.
      if (c.env.outgoing.headersSent) {
        c.env.outgoing.destroy();
        return RESPONSE_ALREADY_SENT;
      }
      const body = {
        error: { code: known ? err.code : 'internal', message: known ? err.message : 'internal error' },
      };
      // The request's body may be unread (a refused upload): the connection cannot serve another.
      return c.json(body, (known ? err.status : 500) as ContentfulStatusCode, { connection: 'close' });
    });
    app.notFound((c) => {
      throw new StoreError(404, 'no_route', `no route ${c.req.method} ${c.req.path}`);
    });
    const jsonLimit = bodyLimit({
      maxSize: maxJsonBody,
      onError: () => {
        throw new StoreError(413, 'too_large', 'the body is too large');
      },
    });
    app.post('/enrol', jsonLimit, (c) => this.enrol(c.req.json().catch(() => undefined)));
    app.use('/objects/*', async (_c, next) => {
      if (!this.credentials) throw new StoreError(503, 'not_enrolled', 'this receiver is not enrolled yet');
      await next();
    });
    app.post('/objects/*', jsonLimit);
    app.route(
      '/objects',
      objectRoutes(this.store, () => this.credentials!),
    );
    return app;
  }

  async listen(host: string, port: number): Promise<number> {
    this.sweepEvery();
    this.server = createAdaptorServer({
      fetch: this.app().fetch,
      createServer: https.createServer,
      serverOptions: { cert: this.options.cert, key: this.options.key },
    }) as https.Server;
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

  /** One time: the control plane, having pinned this receiver's certificate, installs its credentials. */
  private async enrol(json: Promise<unknown>): Promise<Response> {
    if (this.credentials) throw new StoreError(409, 'enrolled', 'this receiver is already enrolled');
    const parsed = enrolment.safeParse(await json);
    if (!parsed.success)
      throw new StoreError(400, 'bad_json', 'enrolling takes { code, writerKey, pruneToken }');
    const body = parsed.data;
    if (!same(body.code, this.enrolmentCode ?? ''))
      throw new StoreError(401, 'bad_credentials', 'wrong enrolment code');
    if (Buffer.from(body.writerKey, 'base64').length !== 32)
      throw new StoreError(400, 'bad_writer_key', 'writerKey must be 32 bytes in base64');
    if (body.pruneToken.length < 32)
      throw new StoreError(400, 'bad_prune_token', 'pruneToken must be at least 32 characters');
    const credentials: Credentials = { writerKey: body.writerKey, pruneTokenSha256: sha256(body.pruneToken) };
    await writeFile(`${this.credentialsPath}.tmp`, JSON.stringify(credentials), { mode: 0o600 });
    await rename(`${this.credentialsPath}.tmp`, this.credentialsPath);
    await rm(join(this.options.dataDir, 'enrolment-code'), { force: true });
    this.credentials = credentials;
    this.enrolmentCode = undefined;
    this.options.log.info('enrolled');
    return new Response(null, { status: 204 });
  }
}
