import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApp, type AppDeps } from '../../api/app.ts';
import { createLogger } from '../../common/log.ts';

/**
 * Every answer the API gave during a test run (method, path, status), so that
 * tests/zz-openapi-coverage.test.ts can check each is declared in the OpenAPI documents. Each test
 * file runs in a process of its own: they meet in one file of the run's folder.
 */
export interface Answer {
  method: string;
  path: string;
  status: number;
}

const answersFile = () => {
  const runDir = process.env.STRACKT_TEST_RUN_DIR;
  return runDir ? join(runDir, 'api-answers.jsonl') : undefined;
};

const noted = new Set<string>();

/** Notes one answer, once per process: a polling loop repeats the same answer many times. */
export function noteAnswer(method: string, path: string, status: number): void {
  const file = answersFile();
  const line = JSON.stringify({ method: method.toUpperCase(), path, status } satisfies Answer);
  if (!file || noted.has(line)) return;
  noted.add(line);
  appendFileSync(file, `${line}\n`);
}

/** The app with every answer it gives noted: app.request and serveApp both go through its fetch. */
export function notingAnswers<
  A extends { fetch: (request: Request, ...rest: never[]) => Response | Promise<Response> },
>(app: A): A {
  const fetch = app.fetch;
  app.fetch = (async (request: Request, ...rest: never[]) => {
    const res = await fetch(request, ...rest);
    noteAnswer(request.method, new URL(request.url).pathname, res.status);
    return res;
  }) as A['fetch'];
  return app;
}

/** The answers noted so far in this run, none if the run noted nothing. */
export function notedAnswers(): Answer[] {
  const file = answersFile();
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Answer);
}

export interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      {
        operationId?: string;
        tags?: string[];
        parameters?: { name: string; in: string }[];
        responses: Record<string, unknown>;
      }
    >
  >;
}

/** The two documents as the API serves them, without a token. */
export async function servedDocuments(): Promise<{ public: OpenApiDocument; agent: OpenApiDocument }> {
  // Making and serving the documents touches none of the app's services.
  const app = createApp({ log: createLogger('api', { level: 'silent' }) } as AppDeps);
  const get = async (path: string) => {
    const res = await app.request(path);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as OpenApiDocument;
  };
  return { public: await get('/openapi.json'), agent: await get('/agent/openapi.json') };
}

// Served by the app but not API operations, so in no document.
const undocumented = [/^\/healthz$/, /^\/(agent\/)?openapi\.json$/, /^\/docs(\/[^/]+)?$/, /^\/app(\/.*)?$/];

/**
 * The document route a path is an instance of, for a method: the one with the fewest parameters,
 * as the router prefers /schedules/{id}/prune to /schedules/{id}/{action}.
 */
function routeOf(documents: OpenApiDocument[], method: string, path: string) {
  const candidates = documents.flatMap((doc) =>
    Object.entries(doc.paths)
      .filter(([template, operations]) => {
        if (!operations[method.toLowerCase()]) return false;
        const pattern = template.replace(/\{[^}]+\}/g, '[^/]+');
        return new RegExp(`^${pattern}/?$`).test(path);
      })
      .map(([template, operations]) => ({ template, operation: operations[method.toLowerCase()]! })),
  );
  return candidates.sort((a, b) => a.template.split('{').length - b.template.split('{').length)[0];
}

/**
 * The answers no document declares, each said as "METHOD /template STATUS". An answer on a path no
 * route of any document matches is fine only when it is the router's own 404 (no such route) or the
 * token check in front of a whole prefix (401), or for the few paths that are not API operations.
 */
export function undeclaredAnswers(documents: OpenApiDocument[], answers: Answer[]): string[] {
  const problems = new Set<string>();
  for (const { method, path, status } of answers) {
    const route = routeOf(documents, method, path);
    if (!route) {
      if (status !== 404 && status !== 401 && !undocumented.some((p) => p.test(path)))
        problems.add(`${method} ${path} ${status} (no route of the documents)`);
      continue;
    }
    if (!(String(status) in route.operation.responses)) problems.add(`${method} ${route.template} ${status}`);
  }
  return [...problems].sort();
}
