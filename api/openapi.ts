import { OpenAPIHono } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { idempotencyHeader } from './idempotency.ts';

type Registry = OpenAPIHono['openAPIRegistry'];

const isAgentRoute = (path: string) => path.startsWith('/agent/');

/**
 * One document of the routes `keep` selects. The app's registry holds only routes (named schemas are
 * collected from them as they are met), so copying the routes copies everything the document needs.
 */
function documentOf(registry: Registry, keep: (path: string) => boolean, title: string, token: string) {
  const doc = new OpenAPIHono();
  doc.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: token,
  });
  for (const def of registry.definitions)
    if (def.type === 'route' && keep(def.route.path)) doc.openAPIRegistry.registerPath(def.route);
  return doc.getOpenAPIDocument({
    openapi: '3.0.3',
    info: { title, version: '0.1.0' },
    security: [{ bearer: [] }],
  });
}

type Document = ReturnType<typeof documentOf>;

/**
 * Every team POST takes an Idempotency-Key (api/idempotency.ts, a middleware, not a route's own
 * declaration): the header and the answers it adds (409 while the first runs or when its answer held a
 * secret, 422 for a malformed key or one reused for another request) are declared on each.
 */
function withIdempotencyKey(document: Document): Document {
  const error = { $ref: '#/components/schemas/Error' };
  for (const item of Object.values(document.paths ?? {})) {
    const post = item?.post;
    if (!post) continue;
    post.parameters = [
      ...(post.parameters ?? []),
      {
        name: idempotencyHeader,
        in: 'header',
        required: false,
        description:
          'Makes a retry safe: the same key and request within 24 h answers the first success again ' +
          '(Idempotent-Replayed: true) and starts or creates nothing more',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      },
    ];
    const answer = (description: string) => ({
      description,
      content: { 'application/json': { schema: error } },
    });
    post.responses[409] ??= answer(
      'The first request with this Idempotency-Key is running, or its answer held a secret',
    );
    post.responses[422] ??= answer(
      'Invalid input, or an Idempotency-Key malformed or used for another request',
    );
  }
  return document;
}

/** The public API and the agents' API, as two documents made from the same route definitions. */
export function openApiDocuments(registry: Registry) {
  return {
    public: withIdempotencyKey(
      documentOf(
        registry,
        (path) => !isAgentRoute(path),
        'strackt backups API',
        'A team API token (stt_...)',
      ),
    ),
    agent: documentOf(
      registry,
      isAgentRoute,
      'strackt agent API',
      'The agent token of one server (sta_...); these routes are for strackt’s agent, not API clients',
    ),
  };
}

/**
 * Serves both documents without a token. They are made at the first request, when every route of
 * the app is registered, and kept: routes do not change while the process runs.
 */
export function openApiRoutes(registry: Registry) {
  let documents: ReturnType<typeof openApiDocuments> | undefined;
  const get = () => (documents ??= openApiDocuments(registry));
  return new Hono()
    .get('/openapi.json', (c) => c.json(get().public))
    .get('/agent/openapi.json', (c) => c.json(get().agent));
}
