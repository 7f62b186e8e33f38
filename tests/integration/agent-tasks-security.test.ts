import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { newId } from '../../common/ids.ts';
import { createServer, recordLastSeen } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { generateTeamKey, publicKeyOf } from '../../format/team-key.ts';
import { deployEnvironment, stopEnvironment } from '../../workflows/environment.workflows.ts';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import {
  startControlPlane,
  type AgentServer,
  type ApiError,
  type ControlPlane,
  type Operation,
} from '../helpers/control-plane.ts';
import { stack, uniqueName, waitFor } from '../helpers/stack.ts';

interface Task {
  id: string;
  activity: string;
  input: Record<string, string>;
  attempt: number;
}

/**
 * Issue 15's attacks on the agent task API: a server's root holds its agent token, so everything that
 * token can do is tried against the tasks, specs and keys of another server of the team (B, whose
 * agent the test plays) and of another team's server (C). Server A runs a real agent.
 */
describe('agent tasks: one server’s agent token against other servers’ work', () => {
  let cp: ControlPlane;
  const team1 = { id: '', token: '' };
  const team2 = { id: '', token: '' };
  let a: AgentServer;
  const tenant = join(stack.runDir, uniqueName('tenant'));
  const b = {
    id: '',
    token: '',
    key: generateTeamKey(),
    envId: '',
    deploy: undefined as Operation | undefined,
  };
  const c = { id: '', token: '', envId: '', deploy: undefined as Operation | undefined };
  const workflows: string[] = [];

  const call = <T = ApiError>(token: string, method: string, path: string, body?: unknown) =>
    cp.request<T>(method, path, token, body);
  const tasksOf = (serverId: string) =>
    cp.db
      .selectFrom('agent_tasks')
      .select(['id', 'activity', 'attempt', 'claimed_at'])
      .where('server_id', '=', serverId)
      .orderBy('created_at')
      .execute();
  const workflowStatus = async (workflowId: string) =>
    (await cp.temporal.workflow.getHandle(workflowId).describe()).status.name;
  /** Each way an agent answers for a task, with a body the API would take from the task's own agent. */
  const reports = [
    { route: 'heartbeat', body: { details: { bytes: 1 } } },
    { route: 'complete', body: { result: null } },
    { route: 'fail', body: { message: 'refused by an intruder', type: 'Intrusion', nonRetryable: true } },
    { route: 'cancelled', body: undefined },
  ];

  /** An environment on a server whose agent the test plays, deployed: its first task waits for that agent. */
  async function deployOn(
    token: string,
    serverId: string,
  ): Promise<{ envId: string; deploy: Operation; task: { id: string } }> {
    const env = await call<{ id: string }>(token, 'POST', '/environments', {
      name: uniqueName('web'),
      serverId,
      services: [{ name: 'web', command: 'sleep 600' }],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    const deploy = await call<Operation>(token, 'POST', `/environments/${env.body.id}/deploy`);
    assert.equal(deploy.status, 202, JSON.stringify(deploy.body));
    workflows.push(deploy.body.workflowId);
    const [task] = await waitFor(`a task for ${serverId}`, async () => {
      const rows = await tasksOf(serverId);
      return rows.length ? rows : undefined;
    });
    return { envId: env.body.id, deploy: deploy.body, task: task! };
  }

  before(async () => {
    // Version 1's upload endpoints (part URLs, parts, the manifest URL); agent-packs.test.ts refuses other
    // servers format 2's (chunks needed, pack URLs, stored reports).
    cp = await startControlPlane({ snapshotFormat: 1 });
    const t1 = await createTeam(cp.db, 'one');
    const t2 = await createTeam(cp.db, 'two');
    Object.assign(team1, { id: t1.team.id, token: t1.token });
    Object.assign(team2, { id: t2.team.id, token: t2.token });
    // A's data root sits one level down, beside a sentinel folder that path tricks would reach.
    a = await cp.addServer(team1.token, team1.id, 'a', { root: join(tenant, 'agent') });
    const serverB = await createServer(cp.db, team1.id, 'b');
    Object.assign(b, { id: serverB.server.id, token: serverB.agentToken });
    // B's agent is played by the test: it enrols a key, which also shows B connected.
    const hello = await call(b.token, 'POST', '/agent/hello', { publicKey: b.key.publicKey.toString('hex') });
    assert.equal(hello.status, 200, JSON.stringify(hello.body));
    const serverC = await createServer(cp.db, team2.id, 'c');
    Object.assign(c, { id: serverC.server.id, token: serverC.agentToken });
    await recordLastSeen(cp.db, c.id, new Date());
  });

  after(async () => {
    // Work left waiting for the played agents ends here, not at its timeouts in the shared Temporal.
    for (const id of workflows)
      await cp.temporal.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    await a?.agent.kill();
    if (a) await cp.stopServices(a.root);
    await cp?.stop();
  });

  it("never hands A another server's task: A's claims come back empty and B's and C's tasks stay unclaimed", async () => {
    const onB = await deployOn(team1.token, b.id);
    const onC = await deployOn(team2.token, c.id);
    Object.assign(b, { envId: onB.envId, deploy: onB.deploy });
    Object.assign(c, { envId: onC.envId, deploy: onC.deploy });

    for (let i = 0; i < 2; i++) {
      const claim = await call(a.agentToken, 'POST', '/agent/tasks/claim', { waitSeconds: 1 });
      assert.equal(claim.status, 204, JSON.stringify(claim.body));
    }
    // A's real agent polled all along, too.
    for (const [server, task] of [
      [b.id, onB.task],
      [c.id, onC.task],
    ] as const) {
      const rows = await tasksOf(server);
      assert.deepEqual(
        rows.map((r) => [r.id, r.activity, r.claimed_at]),
        [[task.id, 'startEnvironment', null]],
      );
    }
  });

  it("refuses A's heartbeat, result, failure and cancellation for B's and C's tasks, claimed or not, and changes nothing", async () => {
    const [taskB] = await tasksOf(b.id);
    const [taskC] = await tasksOf(c.id);
    const attempt = async (token: string, taskId: string) => {
      for (const { route, body } of reports) {
        const res = await call(token, 'POST', `/agent/tasks/${taskId}/${route}`, body);
        assert.equal(res.status, 404, `${route}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'task_not_found');
      }
    };
    await attempt(a.agentToken, taskB!.id);
    await attempt(a.agentToken, taskC!.id);

    // Their own agents take them: now they are running, and still nobody else's to answer.
    const claimedB = await call<{ task: Task }>(b.token, 'POST', '/agent/tasks/claim', { waitSeconds: 0 });
    const claimedC = await call<{ task: Task }>(c.token, 'POST', '/agent/tasks/claim', { waitSeconds: 0 });
    assert.equal(claimedB.body.task.id, taskB!.id);
    assert.equal(claimedC.body.task.id, taskC!.id);
    await attempt(a.agentToken, taskB!.id);
    await attempt(a.agentToken, taskC!.id);
    await attempt(c.token, taskB!.id);
    await attempt(b.token, taskC!.id);

    for (const [server, task, deploy] of [
      [b.id, taskB!, b.deploy!],
      [c.id, taskC!, c.deploy!],
    ] as const) {
      const rows = await tasksOf(server);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.id, task.id);
      assert.ok(rows[0]!.claimed_at, 'still claimed by its own agent');
      assert.equal(await workflowStatus(deploy.workflowId), 'RUNNING');
      const op = await cp.request<Operation>(
        'GET',
        `/operations/${deploy.id}`,
        server === b.id ? team1.token : team2.token,
      );
      assert.equal(op.body.status, 'running');
      assert.equal(op.body.steps[0]!.status, 'running');
    }
    // The task is live for its own agent: its heartbeat goes through.
    const beat = await call<{ cancelRequested: boolean }>(
      b.token,
      'POST',
      `/agent/tasks/${taskB!.id}/heartbeat`,
      {
        details: { step: 'starting' },
      },
    );
    assert.deepEqual([beat.status, beat.body], [200, { cancelRequested: false }]);
    // A beat before a step has any progress to tell carries none: it keeps the step alive all the same.
    const bare = await call(b.token, 'POST', `/agent/tasks/${taskB!.id}/heartbeat`, {});
    assert.equal(bare.status, 200, JSON.stringify(bare.body));
    // C's own agent ends C's deploy: its answer is the one the workflow takes.
    const failC = await call(c.token, 'POST', `/agent/tasks/${taskC!.id}/fail`, {
      message: 'no room',
      type: 'NoRoom',
      nonRetryable: true,
    });
    assert.equal(failC.status, 204);
    const opC = await cp.finished(team2.token, c.deploy!.id);
    assert.deepEqual([opC.status, opC.error], ['failed', 'NoRoom: no room']);
  });

  it('refuses a result not of its step’s shape (422) and fails the operation as MalformedResult, not retried', async () => {
    const [taskB] = await tasksOf(b.id);
    assert.equal(
      (await call(b.token, 'POST', `/agent/tasks/${taskB!.id}/complete`, { result: null })).status,
      204,
    );
    const next = await call<{ task: Task }>(b.token, 'POST', '/agent/tasks/claim', { waitSeconds: 10 });
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.task.activity, 'waitHealthy');
    const wrong = await call(b.token, 'POST', `/agent/tasks/${next.body.task.id}/complete`, {
      result: { healthyAt: 'soon' },
    });
    assert.equal(wrong.status, 422, JSON.stringify(wrong.body));
    assert.deepEqual([wrong.body.error.code, wrong.body.error.field], ['validation_failed', 'result']);
    assert.match(wrong.body.error.message, /^result\.healthyAt: /);

    const op = await cp.finished(team1.token, b.deploy!.id);
    assert.equal(op.status, 'failed');
    assert.match(op.error ?? '', /^MalformedResult: the agent answered waitHealthy with a malformed result/);
    assert.deepEqual(
      op.steps.map((s) => [s.name, s.status]),
      [
        ['start services', 'succeeded'],
        ['health check', 'failed'],
      ],
    );
    assert.deepEqual(await tasksOf(b.id), [], 'the answered task is gone');
    const history = await cp.temporal.workflow.getHandle(b.deploy!.workflowId).fetchHistory();
    const scheduled = (history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitHealthy',
    );
    assert.equal(scheduled.length, 1, 'waitHealthy is not retried');
  });

  it("never gives A B's or C's environment spec, restore or verification access (sealed keys), or upload URLs", async () => {
    const { destinationId } = await cp.addDestination(team1.token);
    const envA = await cp.deployWebEnvironment(team1.token, a.id);
    const snapshot = await cp.backUp(team1.token, envA, destinationId);
    // Played agents must look connected for the API to start work on them.
    await call(b.token, 'POST', '/agent/hello', { publicKey: b.key.publicKey.toString('hex') });

    const restore = await call<Operation>(team1.token, 'POST', `/environments/${envA}/restores`, {
      snapshotId: snapshot.id,
      targetServerId: b.id,
    });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    workflows.push(restore.body.workflowId);
    const verify = await call<Operation>(team1.token, 'POST', `/snapshots/${snapshot.id}/verify`, {
      serverId: b.id,
    });
    assert.equal(verify.status, 202, JSON.stringify(verify.body));
    workflows.push(verify.body.workflowId);
    const backup = await call<Operation>(team1.token, 'POST', `/environments/${b.envId}/backups`, {
      destinationId,
    });
    assert.equal(backup.status, 202, JSON.stringify(backup.body));
    workflows.push(backup.body.workflowId);
    // All three have reached B: the data key is sealed to B's key and an upload is open for B.
    const tasks = await waitFor('the restore, verification and backup to wait for B', async () => {
      const rows = await cp.db
        .selectFrom('agent_tasks')
        .select(['activity', 'input'])
        .where('server_id', '=', b.id)
        .execute();
      return rows.length === 3 ? rows : undefined;
    });
    assert.deepEqual(tasks.map((t) => t.activity).sort(), [
      'captureSnapshot',
      'preflightRestore',
      'verifySnapshotOnHost',
    ]);
    const snapshotId = (tasks.find((t) => t.activity === 'captureSnapshot')!.input as { snapshotId: string })
      .snapshotId;

    const probes: [string, string, unknown?][] = [
      ['GET', `/agent/environments/${b.envId}`],
      ['GET', `/agent/restores/${restore.body.id}`],
      ['POST', `/agent/restores/${restore.body.id}/access`],
      ['POST', `/agent/verifications/${verify.body.id}/access`],
      ['POST', `/agent/snapshots/${snapshotId}/part-urls`, { partNumbers: [1] }],
      ['GET', `/agent/snapshots/${snapshotId}/parts`],
      ['POST', `/agent/snapshots/${snapshotId}/manifest-url`],
    ];
    for (const [method, path, body] of probes) {
      // B's own agent is answered: each of these is real.
      const own = await call(b.token, method, path, body);
      assert.equal(own.status, 200, `${method} ${path} for B: ${JSON.stringify(own.body)}`);
      for (const [who, token] of [
        ['A', a.agentToken],
        ['C', c.token],
      ] as const) {
        const res = await call(token, method, path, body);
        assert.equal(res.status, 404, `${method} ${path} for ${who}: ${JSON.stringify(res.body)}`);
        assert.ok(!JSON.stringify(res.body).includes('sealedDataKey'));
      }
    }
    for (const token of [a.agentToken, b.token]) {
      const res = await call(token, 'GET', `/agent/environments/${c.envId}`);
      assert.equal(res.status, 404, JSON.stringify(res.body));
    }

    // B's access to the snapshot ends with the verification, even one that fails (not on the snapshot's account).
    const verifyTask = await waitFor('B to claim the verification', async () => {
      const claim = await call<{ task: { id: string; activity: string } }>(
        b.token,
        'POST',
        '/agent/tasks/claim',
        {
          waitSeconds: 1,
        },
      );
      return claim.status === 200 && claim.body.task.activity === 'verifySnapshotOnHost'
        ? claim.body.task
        : undefined;
    });
    const failed = await call(b.token, 'POST', `/agent/tasks/${verifyTask.id}/fail`, {
      message: 'the agent gave up',
      type: 'AgentGaveUp',
      nonRetryable: true,
    });
    assert.equal(failed.status, 204, JSON.stringify(failed.body));
    assert.equal((await cp.finished(team1.token, verify.body.id)).status, 'failed');
    const after = await call(b.token, 'POST', `/agent/verifications/${verify.body.id}/access`);
    assert.equal(after.status, 404, JSON.stringify(after.body));
    const row = await cp.db
      .selectFrom('verifications')
      .select('sealed_data_key')
      .where('operation_id', '=', verify.body.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.sealed_data_key, null, 'the sealed key is dropped with the operation');
  });

  it('answers made-up and garbage task ids with 404 or 422, never a 500', async () => {
    const madeUp = newId('task');
    for (const { route, body } of reports) {
      const res = await call(a.agentToken, 'POST', `/agent/tasks/${madeUp}/${route}`, body);
      assert.equal(res.status, 404, `${route}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'task_not_found');
      for (const id of [
        '..%2Fx',
        '..%2F..%2Fagent%2Ftasks%2Fclaim',
        '../x',
        "task_'%3B%20drop%20table%20agent_tasks%3B--",
        '%00',
        '%E2%80%AE',
        'task_' + 'a'.repeat(60),
        '%ZZ',
      ]) {
        const res = await call(a.agentToken, 'POST', `/agent/tasks/${id}/${route}`, body);
        assert.ok(
          [404, 422].includes(res.status),
          `${route} ${id}: ${res.status} ${JSON.stringify(res.body)}`,
        );
        assert.ok(res.body.error.code, `${route} ${id}: an error answer`);
      }
    }
    // The tables the SQL-looking id named are intact.
    await cp.db.selectFrom('agent_tasks').select('id').execute();
  });

  it('fails a task whose ids are malformed as non-retryable MalformedTask, and touches no file', async () => {
    // The shapes an agent's path joins would take to the sentinel, were the ids not checked first.
    const sentinel = join(tenant, 'sentinel');
    await mkdir(sentinel, { recursive: true });
    await writeFile(join(sentinel, 'precious.txt'), 'keep me');
    // A service record as the runtime keeps them: a stop of "../../sentinel" would remove it.
    const decoy = JSON.stringify({
      service: 'decoy',
      pgid: 2147483646,
      startTime: '1',
      startedAt: '2020-01-01T00:00:00.000Z',
      stopSignal: 'SIGTERM',
      stopTimeoutSeconds: 1,
    });
    await writeFile(join(sentinel, 'decoy.json'), decoy);
    const listing = async () => {
      const out: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const entry of await readdir(dir, { withFileTypes: true })) {
          out.push(relative(tenant, join(dir, entry.name)));
          if (entry.isDirectory()) await walk(join(dir, entry.name));
        }
      };
      await walk(tenant);
      return out.sort();
    };
    const before = await listing();

    for (const [workflow, environmentId, step] of [
      [deployEnvironment, '../../..', 'startEnvironment'],
      [stopEnvironment, '../../sentinel', 'stopEnvironment'],
    ] as const) {
      const workflowId = uniqueName('malformed');
      workflows.push(workflowId);
      const handle = await cp.temporal.workflow.start(workflow, {
        taskQueue: cp.controlTaskQueue,
        workflowId,
        args: [{ operationId: newId('op'), teamId: team1.id, environmentId, serverId: a.id }],
      });
      const failure = await handle.result().then(
        () => assert.fail(`${step} of ${environmentId} succeeded`),
        (err: unknown) => err,
      );
      assert.ok(failure instanceof WorkflowFailedError);
      const activity = failure.cause;
      assert.ok(activity instanceof ActivityFailure, String(activity));
      const cause = activity.cause;
      assert.ok(cause instanceof ApplicationFailure, String(cause));
      assert.equal(cause.type, 'MalformedTask');
      assert.equal(cause.nonRetryable, true);
      assert.match(cause.message, new RegExp(`^malformed ${step} input: environmentId must be a env_ id`));
      const events = (await handle.fetchHistory()).events ?? [];
      const started = events.filter((e) => e.activityTaskStartedEventAttributes);
      assert.deepEqual(
        started.map((e) => e.activityTaskStartedEventAttributes!.attempt),
        [1],
        'one attempt',
      );
    }
    assert.deepEqual(await listing(), before, 'no file made or removed');
    assert.equal(await readFile(join(sentinel, 'decoy.json'), 'utf8'), decoy);
    assert.equal(await readFile(join(sentinel, 'precious.txt'), 'utf8'), 'keep me');
    assert.match(a.agent.output(), /"outcome":"failed".*MalformedTask/);
  });

  it('keeps the first key pinned, and a rotated token is refused at once while the new one enrols a new key', async () => {
    const other = generateTeamKey().publicKey.toString('hex');
    const mismatch = await call(a.agentToken, 'POST', '/agent/hello', { publicKey: other });
    assert.equal(mismatch.status, 409, JSON.stringify(mismatch.body));
    assert.equal(mismatch.body.error.code, 'agent_key_mismatch');
    const pinned = publicKeyOf(
      Buffer.from((await readFile(join(a.root, 'agent.key'), 'utf8')).trim(), 'hex'),
    );
    const same = await call(a.agentToken, 'POST', '/agent/hello', { publicKey: pinned.toString('hex') });
    assert.equal(same.status, 200, JSON.stringify(same.body));

    // Another team cannot rotate B's token.
    assert.equal((await call(team2.token, 'POST', `/servers/${b.id}/agent-token`)).status, 404);
    const rotated = await call<{ token: string }>(team1.token, 'POST', `/servers/${b.id}/agent-token`);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const claim = await call(b.token, 'POST', '/agent/tasks/claim', { waitSeconds: 0 });
    assert.equal(claim.status, 401, JSON.stringify(claim.body));
    assert.equal((await call(b.token, 'GET', `/agent/environments/${b.envId}`)).status, 401);
    assert.equal((await call(b.token, 'POST', '/agent/hello', { publicKey: other })).status, 401);

    const newKey = generateTeamKey().publicKey.toString('hex');
    const hello = await call<{ serverId: string }>(rotated.body.token, 'POST', '/agent/hello', {
      publicKey: newKey,
    });
    assert.deepEqual([hello.status, hello.body.serverId], [200, b.id]);
    const row = await cp.db
      .selectFrom('servers')
      .select(['agent_public_key', 'enrolled_at'])
      .where('id', '=', b.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.agent_public_key, newKey);
    const oldKey = await call(rotated.body.token, 'POST', '/agent/hello', {
      publicKey: b.key.publicKey.toString('hex'),
    });
    assert.equal(oldKey.status, 409, 'the new key is the pinned one now');
  });
});
