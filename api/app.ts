import type { Client } from '@temporalio/client';
import { bodyLimit } from 'hono/body-limit';
import { DomainError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { TaskSignals } from '../db/agent-task-signals.ts';
import type { Db } from '../db/database.ts';
import type { Vault } from '../db/vault.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { agentRoutes } from './agent.routes.ts';
import { agentPacksRoutes } from './agent-packs.routes.ts';
import { agentRestorePacksRoutes } from './agent-restore-packs.routes.ts';
import { agentTasksRoutes } from './agent-tasks.routes.ts';
import { agentDamageRoutes } from './agent-damage.routes.ts';
import { backupsOverviewRoutes } from './backups-overview.routes.ts';
import { requireAgent, requireTeam } from './auth.ts';
import { destinationsRoutes } from './destinations.routes.ts';
import { docsPageRoutes } from './docs-page.ts';
import { environmentsRoutes } from './environments.routes.ts';
import { errorBody, errorHandler } from './errors.ts';
import { idempotentPosts } from './idempotency.ts';
import { operationsRoutes } from './operations.routes.ts';
import { openApiRoutes } from './openapi.ts';
import { requestIds, requestLog } from './request-log.ts';
import { newRouter } from './router.ts';
import { schedulesRoutes } from './schedules.routes.ts';
import { environmentSchedulesRoutes } from './environment-schedules.routes.ts';
import { serversRoutes } from './servers.routes.ts';
import { snapshotsRoutes } from './snapshots.routes.ts';
import { teamRoutes } from './team.routes.ts';
import { webAppRoutes } from './web-app.ts';
import { webhooksRoutes } from './webhooks.routes.ts';

export interface AppDeps {
  db: Db;
  /** Seals team secrets at rest; the API puts secrets in and never takes them out again. */
  vault: Vault;
  /** Each destination's store, opened with its credentials: for the agents' presigned URLs. */
  storeOf: StoreOf;
  temporal: Client;
  controlTaskQueue: string;
  agentStaleAfterMs: number;
  /** Wakes held agent polls when a task for their server is enqueued. */
  taskSignals: TaskSignals;
  /** The API's root logger: each request logs through a child bound to its id. */
  log: Logger;
  /** The Temporal Web UI's base address, to link each operation to its workflow there (optional). */
  temporalUiUrl?: string | undefined;
}

// Environment specs are the largest bodies we take; 1 MiB is far above any real one.
const maxBodyBytes = 1024 * 1024;

export function createApp(deps: AppDeps) {
  const app = newRouter<{ Variables: Record<string, never> }>();
  app.onError(errorHandler(deps.log));
  app.notFound((c) =>
    c.json(errorBody(c, { code: 'route_not_found', message: `no route ${c.req.method} ${c.req.path}` }), 404),
  );
  // First, so every answer (an error, a 404, a refused body) has an id and an access line.
  app.use(requestIds(), requestLog(deps.log));
  app.use(
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new DomainError('too_large', 'body_too_large', `request body over ${maxBodyBytes} bytes`);
      },
    }),
  );

  app.get('/healthz', (c) => c.json({ ok: true }));
  // Before the token checks below: the documents (/agent/openapi.json too) and the pages need none.
  app.route('/', openApiRoutes(app.openAPIRegistry));
  app.route('/', docsPageRoutes());
  app.route('/', webAppRoutes());

  for (const prefix of [
    '/team',
    '/servers',
    '/environments',
    '/operations',
    '/destinations',
    '/schedules',
    '/webhooks',
    '/snapshots',
  ]) {
    // `/x/*` matches `/x` too: one registration, so each runs once per request.
    app.use(`${prefix}/*`, requireTeam(deps.db), idempotentPosts(deps.db));
  }
  app.use('/agent/*', requireAgent(deps.db));

  app.route('/team', teamRoutes(deps));
  app.route('/servers', serversRoutes(deps));
  app.route('/environments', environmentsRoutes(deps));
  app.route('/operations', operationsRoutes(deps));
  app.route('/destinations', destinationsRoutes(deps));
  app.route('/environments', environmentSchedulesRoutes(deps));
  app.route('/environments', backupsOverviewRoutes(deps));
  app.route('/schedules', schedulesRoutes(deps));
  app.route('/webhooks', webhooksRoutes(deps));
  app.route('/snapshots', snapshotsRoutes(deps));
  app.route('/agent/tasks', agentTasksRoutes(deps));
  app.route('/agent', agentRoutes(deps));
  app.route('/agent', agentPacksRoutes(deps));
  app.route('/agent', agentRestorePacksRoutes(deps, 'restores'));
  app.route('/agent', agentRestorePacksRoutes(deps, 'verifications'));
  app.route('/agent', agentDamageRoutes(deps, 'restores'));
  app.route('/agent', agentDamageRoutes(deps, 'verifications'));
  return app;
}
