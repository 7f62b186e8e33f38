import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Transfer } from '../../common/operations.ts';
import { createTeam } from '../../db/teams.data.ts';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { apiCalls, apiRequest, type AgentServer, type Operation } from '../helpers/control-plane.ts';
import { startControlPlanePrograms, type ControlPlanePrograms } from '../helpers/control-plane-programs.ts';
import { startFailoverProxy, type FailoverProxy } from '../helpers/failover-proxy.ts';
import { logLines } from '../helpers/log-lines.ts';
import { pgTemporalOptionsFromEnv, startPgTemporal, type PgTemporal } from '../helpers/pg-temporal.ts';
import type { ProgramRun } from '../helpers/processes.ts';
import { freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { volumeHashes } from '../helpers/volume-files.ts';
import {
  activityRuns,
  pickUpAfter,
  workflowTaskWorkers,
  type ActivityRun,
} from '../helpers/workflow-history.ts';

/**
 * Issue 22: the control plane as a cluster. Temporal is the server binary on PostgreSQL, and strackt
 * runs two API processes behind a proxy and two control-plane workers on one task queue. One API and
 * the worker that holds the workflow are SIGKILLed midway through a backup, then the other API and
 * again the workflow's worker midway through a restore. Nothing may be lost (both finish, the restore
 * brings the backed-up files back) and nothing may run twice (one snapshot, every activity and every
 * host step run once, by its first attempt).
 */
describe('a cluster of API processes and workers on Temporal with PostgreSQL', () => {
  let temporal: PgTemporal;
  let cp: ControlPlanePrograms;
  let proxy: FailoverProxy;
  const apis = new Map<number, ProgramRun>();
  let workers: ProgramRun[] = [];
  let api: ReturnType<typeof apiCalls>;
  let token: string;
  let server: AgentServer;
  let destinationId: string;
  let envId: string;
  let media: string;
  let atBackup: Record<string, string>;
  let snapshotId: string;
  // Caps keep a 384 MiB upload (16 s) and download (12 s) running long enough to kill things under them.
  const agentEnv = { STRACKT_UPLOAD_MIB_PER_SECOND: '24', STRACKT_DOWNLOAD_MIB_PER_SECOND: '32' };

  /** Kills, with SIGKILL, the worker that took the workflow's latest task: the one holding it in its cache. */
  async function killWorkflowsWorker(workflowId: string): Promise<number> {
    const pid = (await workflowTaskWorkers(cp.temporal, workflowId)).at(-1);
    const worker = workers.find((w) => w.child.pid === pid);
    assert.ok(worker, `the workflow's worker (${pid}) is one of ours (${workers.map((w) => w.child.pid)})`);
    await worker.kill('SIGKILL');
    workers = workers.filter((w) => w !== worker);
    return pid!;
  }

  /** Resolves once a quarter of the 384 MiB went through the host step, by the operation's live transfer. */
  const underWay = (operationId: string, step: string) =>
    waitFor(
      `${step} a quarter done`,
      async () => {
        const { body } = await api.request<{ transfer: Transfer | null }>(
          'GET',
          `/operations/${operationId}`,
          token,
        );
        return body.transfer?.step === step && body.transfer.bytes >= 96 * 1024 * 1024;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );

  /**
   * The agent's log lines of one backup or restore: each line of a step carries the ids in its input
   * (a capture its snapshot's, a restore's steps their operation's).
   */
  const agentLines = (ids: { snapshotId: string } | { operationId: string }) =>
    logLines(server.agent.output()).filter((l) => Object.entries(ids).every(([k, v]) => l[k] === v));
  const stepEnded = (ids: Parameters<typeof agentLines>[0], step: string) =>
    agentLines(ids).some((l) => l.step === step && l.msg === 'task ended');

  /** Each host step started once on the agent, by the first attempt, and completed. */
  function hostStepsOnce(ids: Parameters<typeof agentLines>[0]): string[] {
    const lines = agentLines(ids);
    const started = lines.filter((l) => l.msg === 'task started');
    const ended = lines.filter((l) => l.msg === 'task ended');
    const steps = started.map((l) => l.step as string);
    assert.deepEqual(steps, [...new Set(steps)], `no step started twice: ${steps}`);
    assert.ok(
      started.every((l) => l.attempt === 1),
      JSON.stringify(started),
    );
    assert.deepEqual(
      ended.map((l) => [l.step, l.outcome]),
      steps.map((s) => [s, 'completed']),
    );
    return steps;
  }

  /** Every activity of the workflow ran by its first attempt and completed: none was retried or lost. */
  async function activitiesOnce(workflowId: string): Promise<ActivityRun[]> {
    const runs = await activityRuns(cp.temporal, workflowId);
    assert.deepEqual(
      runs.filter((r) => r.attempt !== 1 || !r.completed),
      [],
      `every activity once: ${JSON.stringify(runs)}`,
    );
    return runs;
  }

  before(async () => {
    temporal = await startPgTemporal({
      ...pgTemporalOptionsFromEnv(join(stack.runDir, uniqueName('temporal-pg'))),
      // The suite's Temporal has the same (deploy/lib.sh start_test_stack), for its agent-liveness test.
      dynamicConfig: { 'matching.longPollExpirationInterval': '10s' },
    });
    cp = await startControlPlanePrograms({ temporalAddress: temporal.address });
    const second = await freePort();
    apis.set(Number(new URL(cp.apiUrl).port), cp.programs.api);
    apis.set(second, await cp.runApi(second));
    workers = [cp.programs.worker, await cp.runWorker()];
    // The agent and the test reach the APIs as users do, through the proxy in front of both.
    proxy = await startFailoverProxy([...apis.keys()]);
    api = apiCalls(
      cp.db,
      proxy.url,
      apiRequest((path, init) => fetch(new URL(path, proxy.url), init)),
    );

    const team = await createTeam(cp.db, 'cluster');
    token = team.token;
    server = await api.addServer(token, team.team.id, 'edge', { env: agentEnv });
    ({ destinationId } = await api.addDestination(token));
    ({ envId, media } = await api.deployMediaEnvironment(token, server.id, server.root));
    atBackup = await volumeHashes(media);
  });

  after(async () => {
    await server?.agent.kill();
    if (server) await cp?.stopServices(server.root);
    await Promise.all([...apis.values(), ...workers].map((p) => p.kill()));
    await proxy?.close();
    await cp?.stop();
    await temporal?.stop();
  });

  it('finishes a backup whose API process and workflow worker are killed mid-upload, once', async (t) => {
    const operationId = await api.backupUnderWay(token, envId, destinationId);
    const { workflowId } = (await api.request<Operation>('GET', `/operations/${operationId}`, token)).body;
    await underWay(operationId, 'captureDedupSnapshot');
    const [first, second] = [...apis.keys()] as [number, number];
    assert.ok(
      proxy.connections.get(first)! > 0 && proxy.connections.get(second)! > 0,
      `both APIs took connections before the kill: ${[...proxy.connections]}`,
    );
    const killedWorker = await killWorkflowsWorker(workflowId);
    const survivor = workers[0]!.child.pid;
    await apis.get(first)!.kill('SIGKILL');
    const { id: snapshotOfBackup } = await cp.db
      .selectFrom('snapshots')
      .select('id')
      .where('operation_id', '=', operationId)
      .executeTakeFirstOrThrow();
    assert.ok(agentLines({ snapshotId: snapshotOfBackup }).length > 0, 'the capture’s lines are found');
    assert.ok(!stepEnded({ snapshotId: snapshotOfBackup }, 'captureDedupSnapshot'), 'killed mid-upload');
    const toSecond = proxy.connections.get(second)!;

    const op = await api.finished(token, operationId, 180_000);
    // Two of each again, as an orchestrator would restart them, for the restore.
    apis.set(first, await cp.runApi(first));
    workers.push(await cp.runWorker());
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
    assert.ok(
      op.steps.every((s) => s.status === 'succeeded'),
      JSON.stringify(op.steps),
    );
    assert.ok(proxy.connections.get(second)! > toSecond, 'the surviving API took the agent’s calls');
    const taskWorkers = await workflowTaskWorkers(cp.temporal, workflowId);
    assert.ok(
      taskWorkers.includes(killedWorker) && taskWorkers.at(-1) === survivor,
      `the other worker took the workflow over: ${taskWorkers}, killed ${killedWorker}`,
    );

    // Nothing run twice: one snapshot row of any status, each activity and host step once.
    const snapshots = await cp.db
      .selectFrom('snapshots')
      .select(['id', 'status', 'operation_id'])
      .where('environment_id', '=', envId)
      .execute();
    assert.deepEqual(
      snapshots.map((s) => [s.status, s.operation_id]),
      [['complete', operationId]],
    );
    snapshotId = snapshots[0]!.id;
    const runs = await activitiesOnce(workflowId);
    const activities = runs.map((r) => r.type);
    assert.ok(activities.includes('captureDedupSnapshot'), `${activities}`);
    assert.deepEqual(hostStepsOnce({ snapshotId }), ['captureDedupSnapshot']);
    t.diagnostic(`activities: ${activities.join(', ')}; workflow tasks by ${taskWorkers.join(', ')}`);
    // A worker dying under the completion costs its timeout before the other runs it again, not the
    // two minutes the first runs of this test lost.
    const complete = runs.find((r) => r.type === 'completeDedupBackup')!;
    assert.ok(complete.deadWorkerMs <= 15_000, JSON.stringify(complete));
    t.diagnostic(
      `completeDedupBackup took ${complete.ms} ms; a worker dying in it costs ${complete.deadWorkerMs} ms`,
    );
    const waited = await pickUpAfter(cp.temporal, workflowId, 'captureDedupSnapshot');
    t.diagnostic(`the other worker went on ${waited} ms after the capture`);
  });

  it('finishes a restore whose other API process and workflow worker are killed mid-download, once', async (t) => {
    assert.ok(snapshotId, 'the snapshot of the first test');
    await rm(join(media, 'clip-0.bin'));
    await writeFile(join(media, 'clip-1.bin'), 'changed after the backup');
    await writeFile(join(media, 'new.txt'), 'made after the backup');

    const started = await api.request<Operation>('POST', `/environments/${envId}/restores`, token, {
      snapshotId,
      targetServerId: server.id,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { id: operationId, workflowId } = started.body;
    await underWay(operationId, 'fetchAndUnpack');
    const second = [...apis.keys()][1]!;
    const killedWorker = await killWorkflowsWorker(workflowId);
    const survivor = workers[0]!.child.pid;
    await apis.get(second)!.kill('SIGKILL');
    assert.ok(agentLines({ operationId }).length > 0, 'the restore’s lines are found');
    assert.ok(!stepEnded({ operationId }, 'fetchAndUnpack'), 'killed mid-download');

    const op = await api.finished(token, operationId, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
    assert.ok(
      op.steps.every((s) => s.status === 'succeeded'),
      JSON.stringify(op.steps),
    );
    assert.deepEqual(await volumeHashes(media), atBackup, 'the volume holds the snapshot’s files again');
    const taskWorkers = await workflowTaskWorkers(cp.temporal, workflowId);
    assert.ok(
      taskWorkers.includes(killedWorker) && taskWorkers.at(-1) === survivor,
      `the other worker took the workflow over: ${taskWorkers}, killed ${killedWorker}`,
    );
    const activities = await activitiesOnce(workflowId);
    const steps = hostStepsOnce({ operationId });
    assert.ok(steps.includes('fetchAndUnpack') && steps.includes('swapIn'), `${steps}`);
    t.diagnostic(`host steps: ${steps.join(', ')}; activities: ${activities.length}`);
    const waited = await pickUpAfter(cp.temporal, workflowId, 'fetchAndUnpack');
    t.diagnostic(`the other worker went on ${waited} ms after the download`);

    // The rows agree: every operation ended as it did, no task is left waiting, one snapshot.
    const operations = await cp.db
      .selectFrom('operations')
      .select(['kind', 'status'])
      .where('environment_id', '=', envId)
      .orderBy('created_at')
      .execute();
    assert.deepEqual(
      operations.map((o) => [o.kind, o.status]),
      [
        ['deploy', 'succeeded'],
        ['backup', 'succeeded'],
        ['restore', 'succeeded'],
      ],
    );
    const tasks = await cp.db.selectFrom('agent_tasks').select('id').execute();
    assert.deepEqual(tasks, []);
    const snapshots = await cp.db
      .selectFrom('snapshots')
      .select('id')
      .where('environment_id', '=', envId)
      .execute();
    assert.deepEqual(
      snapshots.map((s) => s.id),
      [snapshotId],
    );
    const rss = (await readFile(`/proc/${temporal.pid}/status`, 'utf8')).match(/VmRSS:\s+(\d+)/)?.[1];
    t.diagnostic(`Temporal server RSS ${Math.round(Number(rss) / 1024)} MiB`);
  });
});
