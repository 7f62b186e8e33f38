import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createTeam } from '../../db/teams.data.ts';
import { publicKeyOf } from '../../format/team-key.ts';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { stackS3, type AgentServer, type Operation } from '../helpers/control-plane.ts';
import { startControlPlanePrograms, type ControlPlanePrograms } from '../helpers/control-plane-programs.ts';
import { startAgent } from '../helpers/processes.ts';
import { waitFor } from '../helpers/stack.ts';
import { volumeHashes } from '../helpers/volume-files.ts';

/** Whether the agent's log has a "task ended" line with these fields (its lines are JSON, fields in any order). */
function taskEnded(output: string, fields: Record<string, string>): boolean {
  return output.split('\n').some((line) => {
    if (!line.startsWith('{')) return false;
    const entry = JSON.parse(line) as Record<string, unknown>;
    return entry.msg === 'task ended' && Object.entries(fields).every(([k, v]) => entry[k] === v);
  });
}

interface Snapshot {
  id: string;
  sizeBytes: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Issue 15's faults, injected for real into the control plane as it is deployed (the API and the
 * worker as processes of their own): the API and the worker killed mid-operation and started again,
 * and an agent's token rotated under a running backup. Nothing may be lost or recorded wrongly.
 * (An agent killed mid-upload or mid-unpack: backup.test.ts and restore.test.ts.)
 */
describe('faults between the agent, the API and the workflows', () => {
  let cp: ControlPlanePrograms;
  let token: string;
  let server: AgentServer;
  let destinationId: string;
  let bucket: string;
  let envId: string;
  let media: string;
  let atBackup: Record<string, string>;
  let snapshot: Snapshot;
  // Caps keep a 384 MiB upload (16 s) and download (12 s) running long enough to break something under them.
  const agentEnv = { STRACKT_UPLOAD_MIB_PER_SECOND: '24', STRACKT_DOWNLOAD_MIB_PER_SECOND: '32' };

  const spoolOf = async () => {
    const dir = join(server.root, 'captures', 'spool', envId);
    const [snapshotDir] = await readdir(dir).catch(() => [] as string[]);
    return snapshotDir && join(dir, snapshotDir);
  };
  /** Parts of the running capture the storage has taken, as the agent notes them in its spool. */
  const partsUploaded = async () => {
    const spool = await spoolOf();
    if (!spool) return 0;
    return (await readFile(join(spool, 'uploaded.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
      .length;
  };
  const snapshots = async () =>
    (await cp.request<{ snapshots: Snapshot[] }>('GET', `/environments/${envId}/snapshots`, token)).body
      .snapshots;
  const activityAttempts = async (workflowId: string, activity: string) => {
    const events = (await cp.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const scheduled = new Set(
      events
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity)
        .map((e) => String(e.eventId)),
    );
    return events
      .filter((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
  };

  before(async () => {
    // Version 1's parts and spool: agent-faults-v2.test.ts takes the API away from a format-2 backup.
    cp = await startControlPlanePrograms({ snapshotFormat: 1 });
    const team = await createTeam(cp.db, 'faults');
    token = team.token;
    server = await cp.addServer(token, team.team.id, 'edge', { env: agentEnv });
    ({ destinationId, bucket } = await cp.addDestination(token));
    ({ envId, media } = await cp.deployMediaEnvironment(token, server.id, server.root));
    atBackup = await volumeHashes(media);
  });

  after(async () => {
    await server?.agent.kill();
    if (server) await cp?.stopServices(server.root);
    await cp?.stop();
  });

  it('finishes a backup whose API is killed and restarted mid-upload: the agent works on and reports once it is back', async () => {
    const operationId = await cp.backupUnderWay(token, envId, destinationId);
    const { workflowId } = (await cp.request<Operation>('GET', `/operations/${operationId}`, token)).body;
    // Late enough that the agent needs the API while it is away: it asks for part URLs 16 at a time.
    const atKill = await waitFor(
      'twelve parts uploaded',
      async () => {
        const n = await partsUploaded();
        return n >= 12 ? n : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await cp.killApi();
    await sleep(5_000);
    const duringOutage = await partsUploaded();
    assert.ok(
      duringOutage > atKill,
      `the agent uploaded on while the API was away (${atKill} -> ${duringOutage})`,
    );
    await cp.startApi();

    const op = await cp.finished(token, operationId, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
    const upload = op.steps.find((s) => s.name === 'capture and upload')!;
    assert.doesNotMatch(upload.note ?? '', /resumed/, 'nothing was sent twice');
    assert.deepEqual(
      await activityAttempts(workflowId, 'captureSnapshot'),
      [1],
      'the first attempt finished it',
    );
    const [only, ...more] = await snapshots();
    assert.deepEqual(more, []);
    assert.equal(only!.sizeBytes, upload.bytes);
    assert.ok(only!.sizeBytes > 384 * 1024 * 1024, `${only!.sizeBytes} bytes for 384 MiB of random data`);
    snapshot = only!;

    // The agent streams the stored snapshot back and checks every chunk and file of it.
    const verify = await cp.request<Operation>('POST', `/snapshots/${snapshot.id}/verify`, token, {});
    assert.equal(verify.status, 202, JSON.stringify(verify.body));
    assert.equal((await cp.finished(token, verify.body.id, 120_000)).status, 'succeeded');
  });

  it('completes a restore whose control-plane worker is killed mid-download and started again later', async () => {
    assert.ok(snapshot, 'the snapshot of the first test');
    await rm(join(media, 'clip-0.bin'));
    await writeFile(join(media, 'clip-1.bin'), 'changed after the backup');
    await writeFile(join(media, 'new.txt'), 'made after the backup');

    const started = await cp.request<Operation>('POST', `/environments/${envId}/restores`, token, {
      snapshotId: snapshot.id,
      targetServerId: server.id,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await waitFor('the download to be under way', async () => {
      const { body } = await cp.request<Operation>('GET', `/operations/${started.body.id}`, token);
      return body.steps.find((s) => s.name === 'fetch, verify and unpack')?.status === 'running';
    });
    await sleep(1_000);
    await cp.killWorker();
    assert.ok(!taskEnded(server.agent.output(), { step: 'fetchAndUnpack' }), 'killed mid-download');
    // The agent finishes the step with no worker up: the API hands its result to Temporal, which keeps it.
    await waitFor(
      'the agent to report the download done',
      async () =>
        (await cp.db.selectFrom('agent_tasks').select('id').where('server_id', '=', server.id).execute())
          .length === 0 && taskEnded(server.agent.output(), { step: 'fetchAndUnpack', outcome: 'completed' }),
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const stalled = await cp.request<Operation>('GET', `/operations/${started.body.id}`, token);
    assert.equal(stalled.body.status, 'running', 'nothing moves on without a worker');
    await cp.startWorker();

    const op = await cp.finished(token, started.body.id, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
    assert.ok(
      op.steps.every((s) => s.status === 'succeeded'),
      JSON.stringify(op.steps),
    );
    assert.deepEqual(await volumeHashes(media), atBackup, 'the volume holds the snapshot’s files again');
  });

  it('refuses a rotated agent’s reports: its running backup fails and records nothing, and the agent with the new token backs up', async () => {
    const listed = (await snapshots()).map((s) => s.id);
    const operationId = await cp.backupUnderWay(token, envId, destinationId);
    await waitFor('two parts uploaded', async () => (await partsUploaded()) >= 2, {
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    const [task] = await cp.db
      .selectFrom('agent_tasks')
      .select(['id', 'activity'])
      .where('server_id', '=', server.id)
      .execute();
    assert.equal(task?.activity, 'captureSnapshot');
    const atRotation = await partsUploaded();
    const rotatedAt = Date.now();
    const rotated = await cp.request<{ token: string }>('POST', `/servers/${server.id}/agent-token`, token);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));

    // Whatever the old agent says of its task is refused now.
    const old = server.agentToken;
    const beat = await cp.request('POST', `/agent/tasks/${task.id}/heartbeat`, old, { details: {} });
    assert.equal(beat.status, 401);
    const forged = await cp.request('POST', `/agent/tasks/${task.id}/complete`, old, { result: {} });
    assert.equal(forged.status, 401);
    // The agent hears it on its next heartbeat and stops the step: it sends no more parts.
    await waitFor(
      'the old agent to stop its step',
      async () =>
        taskEnded(server.agent.output(), { task: task.id, step: 'captureSnapshot', outcome: 'gone' }),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const atStop = await partsUploaded();
    await sleep(3_000);
    assert.equal(await partsUploaded(), atStop, 'no part sent after the step stopped');
    // A heartbeat (every 2 s) tells it; what was on its way by then may land: 24 MiB/s is under 2 parts a second.
    assert.ok(
      atStop - atRotation <= 6,
      `${atStop - atRotation} parts sent after the rotation (${atRotation} before)`,
    );

    // Nobody answers for the step any more: Temporal times it out (30 s without a heartbeat) and the retry
    // finds no connected agent (the tests' stale window is 20 s; with the default 75 s, the retry would
    // wait for an agent with the new token a while longer, or fail the same way).
    const op = await cp.finished(token, operationId, 120_000);
    assert.equal(op.status, 'failed', JSON.stringify(op));
    assert.match(op.error ?? '', /^AgentOffline: /);
    assert.deepEqual(
      (await snapshots()).map((s) => s.id),
      listed,
      'the failed backup is not listed',
    );
    const uploads = await stackS3().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'its upload is aborted');
    const pid = Number(await readFile(join(media, 'pid'), 'utf8'));
    assert.notEqual(
      (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]![0],
      'T',
      'the service is not left paused',
    );

    // The server's operator puts the new token in place of the old and restarts the agent.
    await server.agent.kill();
    server.agent = startAgent(cp.apiUrl, rotated.body.token, server.root, agentEnv);
    server.agentToken = rotated.body.token;
    await cp.connected(token, server.id);
    const enrolled = await cp.db
      .selectFrom('servers')
      .select(['agent_public_key', 'enrolled_at'])
      .where('id', '=', server.id)
      .executeTakeFirstOrThrow();
    const key = publicKeyOf(
      Buffer.from((await readFile(join(server.root, 'agent.key'), 'utf8')).trim(), 'hex'),
    );
    assert.equal(enrolled.agent_public_key, key.toString('hex'), 'the same agent key, enrolled again');
    assert.ok(enrolled.enrolled_at && enrolled.enrolled_at.getTime() >= rotatedAt);

    const next = await cp.backUp(token, envId, destinationId);
    assert.ok(next.sizeBytes > 384 * 1024 * 1024, `${next.sizeBytes} bytes`);
    assert.deepEqual((await snapshots()).map((s) => s.id).sort(), [...listed, next.id].sort());
  });
});
