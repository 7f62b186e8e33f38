import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { maxPartNumber, requestedAction } from '../storage/receiver-urls.ts';
import { isPrune, writerBound, type Credentials } from './receiver-auth.ts';
import { checkKey, StoreError } from './object-keys.ts';
import type { ObjectStore } from './object-store.ts';

type ObjectsEnv = { Bindings: HttpBindings };

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const completion = z.object({
  parts: z
    .array(z.object({ partNumber: z.number().int().min(1).max(maxPartNumber), etag: z.string().max(70) }))
    .max(maxPartNumber),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: hex64,
});

function contentLength(c: Context): number {
  const header = c.req.header('content-length');
  const length = Number(header);
  if (!header || !/^\d{1,15}$/.test(header) || !Number.isSafeInteger(length))
    throw new StoreError(411, 'length_required', 'an upload needs a Content-Length');
  return length;
}

const wholeNumber = (header: string | undefined, fallback: number) => {
  if (header === undefined) return fallback;
  return /^\d{1,15}$/.test(header) ? Number(header) : NaN;
};

/**
 * /objects: one object per key. URLs signed with the writer key create and read, within their signed
 * bound; the prune token lists and deletes. Bodies are read from the socket as they come (no copy).
 */
export function objectRoutes(store: ObjectStore, credentials: () => Credentials) {
  const app = new Hono<ObjectsEnv>();

  app.get('/', async (c) => {
    if (!isPrune(credentials(), c.req.header('authorization')))
      throw new StoreError(401, 'bad_credentials', 'listing needs the prune token');
    return c.json({ objects: await store.list(c.req.query('prefix') ?? '') });
  });

  /** The object a request names, the action it asks for, and who asks: the prune token, or a writer URL and its bound. */
  function access(c: Context<ObjectsEnv>) {
    const url = new URL(c.req.url);
    const key = checkKey(decodeURIComponent(url.pathname.slice('/objects/'.length)));
    const action = requestedAction(c.req.method, url.searchParams);
    const asPrune = isPrune(credentials(), c.req.header('authorization'));
    const bound = asPrune ? undefined : writerBound(credentials(), url, action, key);
    return { key, action, asPrune, bound, partNumber: Number(url.searchParams.get('part')) };
  }

  function tooLarge(bytes: number, bound: number | undefined): void {
    if (bound !== undefined && bytes > bound)
      throw new StoreError(413, 'too_large', `${bytes} bytes is more than this URL allows (${bound})`);
  }

  app.put('/*', async (c) => {
    const { key, action, asPrune, bound, partNumber } = access(c);
    const body = c.env.incoming;
    if (action.startsWith('PUT part=')) {
      const length = contentLength(c);
      tooLarge(length, bound);
      const part = await store.putPart(key, partNumber, length, body);
      return c.json(part, 200, { etag: `"${part.etag}"` });
    }
    if (asPrune) throw new StoreError(403, 'forbidden', 'objects are written with a writer URL');
    const length = contentLength(c);
    const total = wholeNumber(c.req.header('x-strackt-total'), length);
    // Without an offset a PUT is a whole upload: it starts over whatever an earlier try left.
    const offsetHeader = c.req.header('x-strackt-offset');
    const offset = wholeNumber(offsetHeader, 0);
    const hash = c.req.header('x-strackt-sha256') ?? '';
    if (!Number.isSafeInteger(total) || !Number.isSafeInteger(offset))
      throw new StoreError(
        400,
        'bad_range',
        'X-Strackt-Total and X-Strackt-Offset must be whole numbers of bytes',
      );
    if (!hex64.safeParse(hash).success)
      throw new StoreError(400, 'bad_hash', 'X-Strackt-SHA256 must be 64 hex digits');
    tooLarge(total, bound);
    const state = await store.append(key, {
      offset,
      length,
      total,
      sha256: hash,
      body,
      restart: offsetHeader === undefined,
    });
    return c.json(state, state.complete ? 201 : 202);
  });

  app.post('/*', async (c) => {
    const { key, action, bound } = access(c);
    if (action !== 'POST complete')
      throw new StoreError(405, 'method_not_allowed', 'POST completes an upload (?complete)');
    const parsed = completion.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success)
      throw new StoreError(
        400,
        'bad_complete',
        'completing takes { parts: [{ partNumber, etag }], size, sha256 }',
      );
    // The control plane signs the size it expects: the parts must add up to exactly that.
    if (bound !== undefined && parsed.data.size !== bound)
      throw new StoreError(
        400,
        'size_mismatch',
        `this URL completes an object of ${bound} bytes, not ${parsed.data.size}`,
      );
    const state = await store.completeUpload(key, {
      parts: parsed.data.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag.replace(/"/g, '') })),
      size: parsed.data.size,
      sha256: parsed.data.sha256,
    });
    return c.json(state, 201);
  });

  app.on(['GET', 'HEAD'], '/*', async (c) => {
    const { key, action } = access(c);
    if (action === 'GET parts') return c.json({ parts: await store.listParts(key) });
    const head = c.req.method === 'HEAD';
    const state = await store.state(key);
    if (!state?.complete) {
      const headers = { 'x-strackt-uploaded': String(state?.size ?? 0) };
      if (head) return c.body(null, 404, headers);
      return c.json({ error: { code: 'not_found', message: `no object ${key}` } }, 404, headers);
    }
    // Streamed straight to the socket: web streams would cost a copy of every byte.
    const { outgoing } = c.env;
    const range = /^bytes=(\d+)-(\d*)$/.exec(c.req.header('range') ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : state.size - 1, state.size - 1);
      if (start > end) throw new StoreError(416, 'bad_range', `the object has ${state.size} bytes`);
      outgoing.writeHead(206, {
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${state.size}`,
      });
      if (head) outgoing.end();
      else store.read(key, { start, end }).pipe(outgoing);
      return RESPONSE_ALREADY_SENT;
    }
    outgoing.writeHead(200, { 'content-length': state.size, 'accept-ranges': 'bytes' });
    if (head) outgoing.end();
    else store.read(key).pipe(outgoing);
    return RESPONSE_ALREADY_SENT;
  });

  app.delete('/*', async (c) => {
    const { key, action, asPrune } = access(c);
    if (action === 'DELETE upload') {
      await store.abortUpload(key);
      return c.body(null, 204);
    }
    if (!asPrune)
      throw new StoreError(
        403,
        'append_only',
        'writer URLs cannot delete: this receiver is append-only for writers',
      );
    await store.remove(key);
    return c.body(null, 204);
  });

  app.all('/*', (c) => {
    throw new StoreError(405, 'method_not_allowed', `${c.req.method} is not allowed on objects`);
  });

  return app;
}
