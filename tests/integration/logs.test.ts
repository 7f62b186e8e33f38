import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import proto from '@temporalio/proto';
import { createTeam } from '../../db/teams.data.ts';
import type { AgentServer, Operation } from '../helpers/control-plane.ts';
import { startControlPlanePrograms, type ControlPlanePrograms } from '../helpers/control-plane-programs.ts';
import { logLines, type LogLine } from '../helpers/log-lines.ts';
import { runProgram } from '../helpers/processes.ts';
import { stack, uniqueName, waitFor } from '../helpers/stack.ts';

/** A task's lines in the agent's log, by their messages in order, with the fields a test reads. */
const story = (lines: LogLine[], field: string, id: string) => lines.filter((l) => l[field] === id);

/**
 * The logs as an operator reads them: the agent's tell each backup and restore from start to end,
 * the worker's carry the Temporal SDK's own lines at the level asked, and none holds a secret.
 */
describe('logs of a backup and a restore on the real stack', () => {
  let cp: ControlPlanePrograms;
  let token: string;
  let server: AgentServer;
  let teamKey: string;
  let destinationId: string;
  let envId: string;

  before(async () => {
    cp = await startControlPlanePrograms();
    // The worker at debug: the Temporal SDK's lines (its worker's and core's) come through our logger.
    await cp.killWorker();
    await cp.startWorker({ LOG_LEVEL: 'debug' });
    const team = await createTeam(cp.db, 'logged');
    token = team.token;
    const destination = await cp.addDestination(token);
    destinationId = destination.destinationId;
    teamKey = destination.teamKey!;
    server = await cp.addServer(token, team.team.id, 'web-1');
    envId = await cp.deployWebEnvironment(token, server.id);
    await writeFile(join(server.root, 'volumes', envId, 'webdata', 'data.bin'), randomBytes(3 * 1024 * 1024));
  });

  after(async () => {
    await cp.stopServices(server.root);
    await server.agent.kill();
    await cp.stop();
  });

  it('the agent tells a backup and a restore: start, volumes, bytes and rate, end; no secret anywhere', async () => {
    const snapshot = await cp.backUp(token, envId, destinationId);
    const restore = await cp.request<Operation>('POST', `/environments/${envId}/restores`, token, {
      snapshotId: snapshot.id,
      targetServerId: server.id,
    });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    assert.equal((await cp.finished(token, restore.body.id)).status, 'succeeded');

    const agent = logLines(server.agent.output());
    const backup = story(agent, 'snapshotId', snapshot.id).filter((l) => l.step === 'captureDedupSnapshot');
    assert.deepEqual(
      backup.map((l) => l.msg),
      ['task started', 'capturing', 'captured', 'uploaded', 'task ended'],
      server.agent.output().slice(-3000),
    );
    const [started, capturing, captured, uploaded, ended] = backup as [LogLine, ...LogLine[]];
    assert.equal(started.environmentId, envId);
    assert.deepEqual(capturing!.volumes, ['webdata']);
    const [volume] = captured!.volumes as { name: string; bytes: number }[];
    assert.equal(volume!.name, 'webdata');
    assert.ok(volume!.bytes >= 3 * 1024 * 1024, `${volume!.bytes} bytes`);
    assert.equal(uploaded!.bytes, snapshot.sizeBytes);
    assert.equal(typeof uploaded!.mibPerSecond, 'number');
    assert.equal(typeof uploaded!.seconds, 'number');
    assert.equal(ended!.outcome, 'completed');

    // The restore: every step of it under the environment's id, those that name it under the operation's.
    const restoring = story(agent.slice(agent.indexOf(ended!) + 1), 'environmentId', envId);
    assert.deepEqual(
      restoring.filter((l) => l.msg === 'task ended').map((l) => [l.step, l.outcome, l.operationId]),
      [
        ['preflightRestore', restore.body.id],
        ['fetchAndUnpack', restore.body.id],
        ['stopEnvironment', undefined],
        ['swapIn', restore.body.id],
        ['startEnvironment', undefined],
        ['waitHealthy', undefined],
        ['finishRestore', restore.body.id],
      ].map(([step, operationId]) => [step, 'completed', operationId]),
    );
    const fetching = restoring.find((l) => l.msg === 'fetching the snapshot')!;
    assert.equal(fetching.snapshotId, snapshot.id);
    assert.deepEqual(
      (fetching.volumes as { name: string }[]).map((v) => v.name),
      ['webdata'],
    );
    const unpacked = restoring.find((l) => l.msg === 'unpacked into staging')!;
    // The blobs of a first snapshot fetched: no more than it stored (its packs' indexes are not read).
    assert.ok(Number(unpacked.bytes) > 3 * 1024 * 1024 && Number(unpacked.bytes) <= snapshot.sizeBytes);
    assert.equal(typeof unpacked.mibPerSecond, 'number');

    const logs = {
      agent: server.agent.output(),
      api: cp.programs.api.output(),
      worker: cp.programs.worker.output(),
    };
    for (const [program, output] of Object.entries(logs))
      for (const [what, secret] of [
        ['the team key', teamKey],
        ['the agent token', server.agentToken],
        ['the team token', token],
        ['the storage secret key', stack.s3.secretAccessKey],
        ['a presigned URL', 'X-Amz-Signature'],
      ])
        assert.ok(!output.includes(secret!), `${what} is in the ${program}'s log`);
  });

  it('a worker at debug logs the Temporal SDK’s lines through ours; at warn, no info line', async () => {
    const sdk = logLines(cp.programs.worker.output()).filter((l) => l.sdkComponent);
    assert.ok(
      sdk.some((l) => l.sdkComponent === 'core'),
      'core’s lines are forwarded',
    );
    assert.ok(sdk.some((l) => l.sdkComponent === 'worker'));
    assert.ok(sdk.some((l) => l.level === 'debug'));
    for (const line of sdk) assert.equal(line.component, 'worker');

    const taskQueue = uniqueName('quiet');
    const quiet = runProgram('worker/control-plane.main.ts', {
      ...cp.config,
      STRACKT_CONTROL_TASK_QUEUE: taskQueue,
      LOG_LEVEL: 'warn',
    });
    try {
      const identity = `${quiet.child.pid}@`;
      await waitFor(
        'the quiet worker to poll',
        async () => {
          if (quiet.child.exitCode !== null) throw new Error(`the worker exited: ${quiet.output()}`);
          const { pollers } = await cp.temporal.workflowService.describeTaskQueue({
            namespace: stack.namespace,
            taskQueue: { name: taskQueue },
            taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
          });
          return pollers?.some((p) => p.identity?.startsWith(identity));
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    } finally {
      // It stops on SIGTERM: Temporal's runtime, forwarding core's logs, would keep it alive while its
      // connection stayed open.
      const stopped = await Promise.race([quiet.kill(), sleep(30_000, 'still running')]);
      if (stopped === 'still running') await quiet.kill('SIGKILL');
      assert.notEqual(stopped, 'still running', 'the worker exits once drained');
    }
    const output = quiet.output();
    assert.ok(
      logLines(output).every((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal'),
      output.slice(-3000),
    );
    assert.doesNotMatch(output, /"level":"(info|debug|trace)"/);
  });
});
