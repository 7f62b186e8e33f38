import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createApp, type AppDeps } from '../../api/app.ts';
import { createLogger } from '../../common/log.ts';
import { servedDocuments, undeclaredAnswers, type OpenApiDocument } from '../helpers/api-answers.ts';

const operations = (doc: OpenApiDocument) =>
  Object.entries(doc.paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, ...op })),
  );

describe('the OpenAPI documents', () => {
  it('are valid OpenAPI 3.0, both of them', async () => {
    for (const [name, doc] of Object.entries(await servedDocuments())) {
      const result = await new Validator().validate({ ...doc });
      assert.equal(result.valid, true, `${name}: ${JSON.stringify(result.errors, null, 2)}`);
    }
  });

  it('split the routes: the agents’ in their own document, the public one without them', async () => {
    const docs = await servedDocuments();
    const agentPaths = Object.keys(docs.agent.paths);
    assert.ok(agentPaths.includes('/agent/hello') && agentPaths.includes('/agent/tasks/claim'));
    assert.deepEqual(
      agentPaths.filter((p) => !p.startsWith('/agent/')),
      [],
    );
    assert.ok('/environments/{id}/backups' in docs.public.paths);
    assert.deepEqual(
      Object.keys(docs.public.paths).filter((p) => p.startsWith('/agent')),
      [],
    );
  });

  it('give every operation a tag and an operationId no other operation has', async () => {
    const docs = await servedDocuments();
    const all = [...operations(docs.public), ...operations(docs.agent)];
    assert.ok(all.length > 50, `${all.length} operations`);
    for (const op of all) {
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z]+$/, `${op.name}: operationId`);
      assert.equal(op.tags?.length, 1, `${op.name}: one tag`);
      assert.ok('401' in op.responses && '500' in op.responses, `${op.name}: 401 and 500 declared`);
    }
    const ids = all.map((op) => op.operationId);
    assert.deepEqual(
      ids.filter((id, i) => ids.indexOf(id) !== i),
      [],
      'duplicate operationIds',
    );
  });

  it('type an environment’s services from the schema that validates them', async () => {
    const docs = await servedDocuments();
    const schemas = (docs.public as unknown as { components: { schemas: Record<string, unknown> } })
      .components.schemas;
    const services = (schemas.Environment as { properties: { services: { items: { properties: object } } } })
      .properties.services;
    assert.ok('command' in services.items.properties && 'healthCheck' in services.items.properties);
  });
});

describe('the coverage check of answers', () => {
  it('declares the Idempotency-Key, and what it may answer, on every public POST and no agent route', async () => {
    const docs = await servedDocuments();
    const posts = (doc: typeof docs.public) =>
      Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
        item?.post ? [[path, item.post] as const] : [],
      );
    assert.ok(posts(docs.public).length > 10);
    for (const [path, post] of posts(docs.public)) {
      const header = post.parameters?.find((p) => p.name === 'Idempotency-Key');
      assert.equal(header?.in, 'header', path);
      assert.ok(post.responses[409] && post.responses[422], path);
    }
    for (const [path, post] of posts(docs.agent))
      assert.ok(!post.parameters?.some((p) => p.name === 'Idempotency-Key'), path);
  });

  it('finds an answer a route does not declare, and accepts the declared ones', async () => {
    const docs = await servedDocuments();
    const problems = undeclaredAnswers(
      [docs.public, docs.agent],
      [
        { method: 'GET', path: '/servers/srv_1', status: 404 },
        { method: 'POST', path: '/schedules/sch_1/prune', status: 202 },
        { method: 'POST', path: '/agent/tasks/claim', status: 204 },
        { method: 'GET', path: '/no/such/route', status: 404 },
        { method: 'GET', path: '/healthz', status: 200 },
        { method: 'GET', path: '/servers/srv_1', status: 418 },
        { method: 'POST', path: '/schedules/sch_1/prune', status: 410 },
        { method: 'GET', path: '/undocumented', status: 200 },
      ],
    );
    assert.deepEqual(problems, [
      'GET /servers/{id} 418',
      'GET /undocumented 200 (no route of the documents)',
      'POST /schedules/{id}/prune 410',
    ]);
  });
});

describe('the API reference page', () => {
  // The page and its files touch none of the app's services.
  const app = createApp({ log: createLogger('api', { level: 'silent' }) } as AppDeps);

  it('is served without a token, with its script and style from the installed swagger-ui-dist', async () => {
    const page = await app.request('/docs');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from a CDN');
    const files = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(files.sort(), ['/docs/start.js', '/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css']);
    const expected: Record<string, RegExp> = {
      '/docs/swagger-ui.css': /^text\/css/,
      '/docs/swagger-ui-bundle.js': /^text\/javascript/,
      '/docs/start.js': /^text\/javascript/,
    };
    for (const file of files) {
      const res = await app.request(file);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type') ?? '', expected[file]!, file);
      const text = await res.text();
      if (file === '/docs/swagger-ui-bundle.js') assert.match(text, /SwaggerUIBundle/);
      if (file === '/docs/start.js') assert.match(text, /url: '\/openapi\.json'/);
    }
  });

  it('serves no other file of the package', async () => {
    for (const file of ['/docs/package.json', '/docs/constructor', '/docs/index.html'])
      assert.equal((await app.request(file)).status, 404, file);
  });
});
