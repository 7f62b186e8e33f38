import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { startPrune } from '../../common/workflow-starts.ts';
import type { pruneSnapshots } from '../../workflows/prune.workflow.ts';
import { createTeam } from '../../db/teams.data.ts';
import { stackS3, startControlPlane, type ControlPlane, type Operation } from '../helpers/control-plane.ts';
import { startReceiver, type RunningReceiver } from '../helpers/receiver.ts';
import { stack, uniqueName, waitFor } from '../helpers/stack.ts';
import type { ProgramRun } from '../helpers/processes.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';

interface Snapshot {
  id: string;
  pinned: boolean;
  objects: { data: string; manifest: string };
  lastVerified: { at: string; result: string; error: string | null } | null;
}

interface ScheduleView {
  recentRuns: { nominalAt: string; status: string; snapshotId: string | null }[];
}

describe('retention and verification: the evidence a customer needs', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let token: string;
  let teamId: string;
  let serverId: string;
  let destinationId: string;
  let bucket: string;
  let webhooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let receiver: RunningReceiver;
  const receiverDir = join(stack.runDir, uniqueName('retention-receiver'));
  const dataRoot = join(stack.runDir, uniqueName('retention-agent'));
  const s3 = stackS3();

  before(async () => {
    // Version 1's objects, pruned whole; gc-format2.test.ts and verify-v2.test.ts prune and verify format 2's
    // packs.
    cp = await startControlPlane({ snapshotFormat: 1 });
    const team = await createTeam(cp.db, 'keepers');
    token = team.token;
    teamId = team.team.id;
    ({ id: serverId, agent } = await cp.addServer(token, teamId, 'a', { root: dataRoot }));
    ({ destinationId, bucket } = await cp.addDestination(token));
    webhooks = await startWebhookReceiver();
    const hook = await cp.request<{ secret: string }>('POST', '/webhooks', token, { url: webhooks.url });
    webhooks.secret.value = hook.body.secret;
    receiver = await startReceiver(receiverDir);
  });

  const schedules: string[] = [];

  after(async () => {
    // Their Temporal Schedules would outlive this test's database otherwise.
    for (const id of schedules) await cp?.request('DELETE', `/schedules/${id}`, token);
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await receiver?.program.kill();
    await webhooks?.close();
    await cp?.stop();
    await rm(receiverDir, { recursive: true, force: true });
  });

  const snapshotsOf = async (envId: string) =>
    (await cp.request<{ snapshots: Snapshot[] }>('GET', `/environments/${envId}/snapshots`, token)).body
      .snapshots;

  /** A schedule that never fires by itself: its runs are "run now". */
  async function schedule(envId: string, body: Record<string, unknown>): Promise<string> {
    const created = await cp.request<{ id: string }>('POST', `/environments/${envId}/schedules`, token, {
      cron: '0 0 1 1 *',
      destinationId,
      ...body,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    schedules.push(created.body.id);
    return created.body.id;
  }

  /** Runs a schedule now and waits for the run (backup and its prune) to end: the snapshot it made. */
  async function runNow(scheduleId: string): Promise<string> {
    const before = (await cp.request<ScheduleView>('GET', `/schedules/${scheduleId}`, token)).body.recentRuns;
    const startedAt = Date.now();
    const triggered = await cp.request('POST', `/schedules/${scheduleId}/trigger`, token);
    assert.equal(triggered.status, 202, JSON.stringify(triggered.body));
    const run = await waitFor(
      'the run to make its snapshot',
      async () => {
        const { body } = await cp.request<ScheduleView>('GET', `/schedules/${scheduleId}`, token);
        const fresh = body.recentRuns.find(
          (r) => r.status !== 'running' && !before.some((b) => b.nominalAt === r.nominalAt),
        );
        if (!fresh && Date.now() - startedAt > 60_000)
          throw new Error(`runs: ${JSON.stringify(body.recentRuns)}`);
        return fresh;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    // The run's workflow ends after its prune: wait for it, so the next run is not skipped as overlapping.
    await cp.temporal.workflow
      .getHandle(`scheduled-backup-${scheduleId}-${run.nominalAt.replace('.000Z', 'Z')}`)
      .result();
    return run.snapshotId!;
  }

  /** What a prune started through the API deleted: its workflow's result. */
  const prunedBy = async (workflowId: string) =>
    (await cp.temporal.workflow.getHandle<typeof pruneSnapshots>(workflowId).result()).deleted;

  const inBucket = (key: string) =>
    s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => true,
      () => false,
    );

  /** Rows and objects agree: a listed or deleting snapshot has both objects, a deleted one none, and no object lacks a row. */
  async function consistent(envId: string): Promise<void> {
    const rows = await cp.db
      .selectFrom('snapshots')
      .select(['id', 'status', 'data_key', 'manifest_key'])
      .where('environment_id', '=', envId)
      .execute();
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `strackt/` }));
    const keys = new Set((listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.includes(envId)));
    for (const row of rows) {
      const has = keys.has(row.data_key) && keys.has(row.manifest_key);
      if (row.status === 'complete') assert.ok(has, `complete ${row.id} has its objects`);
      if (row.status === 'deleted')
        assert.ok(!keys.has(row.data_key) && !keys.has(row.manifest_key), `deleted ${row.id} has none`);
    }
    const owned = new Set(
      rows.filter((r) => r.status !== 'deleted').flatMap((r) => [r.data_key, r.manifest_key]),
    );
    for (const key of keys) assert.ok(owned.has(key), `${key} belongs to a snapshot not deleted`);
  }

  it('prunes after each scheduled backup by the schedule’s rule, objects and rows together, pinned kept', async () => {
    const envId = await cp.deployWebEnvironment(token, serverId);
    const id = await schedule(envId, { retention: { last: 2 }, verify: true });
    const first = await runNow(id);
    const second = await runNow(id);
    // The schedule verifies each of its snapshots after the backup.
    await waitFor('the first snapshot to be verified', async () =>
      (await snapshotsOf(envId)).find((s) => s.id === first)?.lastVerified?.result === 'ok'
        ? true
        : undefined,
    );
    assert.equal((await cp.request('PATCH', `/snapshots/${first}`, token, { pinned: true })).status, 200);
    const third = await runNow(id);
    assert.deepEqual(
      (await snapshotsOf(envId)).map((s) => s.id),
      [third, second, first],
      'last 2 and the pinned one',
    );
    const secondRow = await cp.db
      .selectFrom('snapshots')
      .selectAll()
      .where('id', '=', second)
      .executeTakeFirstOrThrow();
    const fourth = await runNow(id);
    assert.deepEqual(
      (await snapshotsOf(envId)).map((s) => s.id),
      [fourth, third, first],
    );
    const gone = await cp.db
      .selectFrom('snapshots')
      .selectAll()
      .where('id', '=', second)
      .executeTakeFirstOrThrow();
    assert.equal(gone.status, 'deleted');
    assert.ok(gone.deleted_at);
    assert.equal(await inBucket(secondRow.data_key), false, 'its data object is gone');
    assert.equal(await inBucket(secondRow.manifest_key), false, 'its manifest is gone');
    await consistent(envId);
    const again = await cp.request<{ workflowId: string }>('POST', `/schedules/${id}/prune`, token);
    assert.equal(again.status, 202);
    assert.deepEqual(await prunedBy(again.body.workflowId), [], 'run again, it has nothing left to do');
  });

  it('is safe run twice at once and beside a backup', async () => {
    const envId = await cp.deployWebEnvironment(token, serverId);
    const id = await schedule(envId, {});
    const made = [await runNow(id), await runNow(id), await runNow(id)];
    const patched = await cp.request('PUT', `/schedules/${id}`, token, {
      cron: '0 0 1 1 *',
      destinationId,
      retention: { last: 1 },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    // A backup of the environment under way while two prunes of its schedule run at once.
    const backup = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
      destinationId,
    });
    // Several at once, so some are asked for in the same millisecond (one workflow id) as well.
    const prunes = await Promise.all(
      Array.from({ length: 8 }, () =>
        cp.request<{ workflowId: string }>('POST', `/schedules/${id}/prune`, token),
      ),
    );
    for (const p of prunes) assert.equal(p.status, 202, JSON.stringify(p.body));
    const deleted = await Promise.all(prunes.map((p) => prunedBy(p.body.workflowId)));
    assert.deepEqual(
      [...new Set(deleted.flat())].sort(),
      [made[0], made[1]].sort(),
      'the older two, each deleted once or by several: no error either way',
    );
    const done = await cp.finished(token, backup.body.id, 120_000);
    assert.equal(done.status, 'succeeded');
    const listed = (await snapshotsOf(envId)).map((s) => s.id);
    assert.equal(listed.length, 2, 'the manual backup (no schedule: kept) and the newest scheduled one');
    assert.ok(listed.includes(made[2]!));
    await consistent(envId);
  });

  it('makes two prunes asked for in the same millisecond one, answering both', async () => {
    const envId = await cp.deployWebEnvironment(token, serverId);
    const id = await schedule(envId, { retention: { last: 1 } });
    const made = [await runNow(id), await runNow(id)];
    // Run now prunes after its backup: the older one is gone already; mark it back to see it pruned here.
    await cp.db.updateTable('snapshots').set({ status: 'deleting' }).where('id', '=', made[0]!).execute();
    const target = { teamId, environmentId: envId, scheduleId: id };
    const at = new Date();
    const [a, b] = await Promise.all([startPrune(cp, target, at), startPrune(cp, target, at)]);
    assert.equal(a.workflowId, b.workflowId);
    assert.equal(
      (await a.describe()).runId,
      (await b.describe()).runId,
      'one run: the second joined the first',
    );
    const [ra, rb] = await Promise.all([a.result(), b.result()]);
    assert.deepEqual(ra, rb);
    assert.deepEqual(ra.deleted, [made[0]]);
  });

  it('prunes on a receiver with the prune token', async () => {
    const created = await cp.request<{ destination: { id: string } }>('POST', '/destinations', token, {
      kind: 'receiver',
      name: 'home',
      url: receiver.url,
      fingerprint: receiver.fingerprint,
      enrolmentCode: receiver.enrolmentCode,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const envId = await cp.deployWebEnvironment(token, serverId);
    const id = await schedule(envId, { destinationId: created.body.destination.id, retention: { last: 1 } });
    const first = await runNow(id);
    const row = await cp.db
      .selectFrom('snapshots')
      .selectAll()
      .where('id', '=', first)
      .executeTakeFirstOrThrow();
    assert.ok(existsSync(join(receiverDir, 'objects', row.data_key)));
    const second = await runNow(id);
    assert.deepEqual(
      (await snapshotsOf(envId)).map((s) => s.id),
      [second],
    );
    assert.equal(existsSync(join(receiverDir, 'objects', row.data_key)), false, 'deleted on the receiver');
    assert.equal(existsSync(join(receiverDir, 'objects', row.manifest_key)), false);
  });

  it('catches a deleted object, a flipped byte and a truncated object: each marked, notified, never the default restore point', async () => {
    const envId = await cp.deployWebEnvironment(token, serverId);
    // Several chunks of data, so that a byte flipped near the end is found by the agent streaming it.
    await writeFile(join(dataRoot, 'volumes', envId, 'webdata', 'media.bin'), randomBytes(6 * 1024 * 1024));
    const good = await cp.backUp(token, envId, destinationId);
    const verify = async (snapshotId: string) => {
      const started = await cp.request<Operation>('POST', `/snapshots/${snapshotId}/verify`, token, {});
      assert.equal(started.status, 202, JSON.stringify(started.body));
      return cp.finished(token, started.body.id, 120_000);
    };
    const ok = await verify(good.id);
    assert.equal(ok.status, 'succeeded', JSON.stringify(ok));
    assert.ok((ok.steps.find((s) => s.name === 'stream and verify')?.bytes ?? 0) > 0);

    const deleted = await cp.backUp(token, envId, destinationId);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: deleted.objects.data }));
    const flipped = await cp.backUp(token, envId, destinationId);
    const bytes = Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: flipped.objects.data }))
      ).Body!.transformToByteArray(),
    );
    bytes[bytes.length - 100]! ^= 0x40;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: flipped.objects.data, Body: bytes }));
    const truncated = await cp.backUp(token, envId, destinationId);
    const whole = Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: truncated.objects.data }))
      ).Body!.transformToByteArray(),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: truncated.objects.data,
        Body: whole.subarray(0, whole.length >> 1),
      }),
    );

    const expected = { [deleted.id]: 'missing', [flipped.id]: 'failed', [truncated.id]: 'failed' };
    for (const [snapshotId, result] of Object.entries(expected)) {
      const op = await verify(snapshotId);
      assert.equal(op.status, 'failed', JSON.stringify(op));
      const shown = (await snapshotsOf(envId)).find((s) => s.id === snapshotId)!;
      assert.equal(shown.lastVerified?.result, result, JSON.stringify(shown));
      assert.ok(shown.lastVerified?.error, 'the reason is kept');
    }
    assert.match(
      (await snapshotsOf(envId)).find((s) => s.id === flipped.id)!.lastVerified!.error!,
      /SnapshotCorrupt: .*chunk/,
      'found by the agent streaming it, past the header the control plane checks',
    );
    assert.equal((await snapshotsOf(envId)).find((s) => s.id === good.id)!.lastVerified?.result, 'ok');

    const notified = await waitFor('three notifications', async () => {
      const got = webhooks.received.filter((r) => r.event === 'snapshot.verification_failed');
      return got.length >= 3 ? got : undefined;
    });
    assert.ok(
      notified.every((n) => n.valid),
      'signed with the webhook’s secret',
    );
    assert.deepEqual(
      notified.map((n) => n.body.snapshotId).sort(),
      [deleted.id, flipped.id, truncated.id].sort(),
    );

    const overview = await cp.request<{
      lastVerified: { snapshotId: string; result: string };
      failedVerification: string[];
    }>('GET', `/environments/${envId}/backups`, token);
    assert.equal(
      overview.body.lastVerified.snapshotId,
      truncated.id,
      'the latest verification, as the user sees it',
    );
    assert.equal(overview.body.lastVerified.result, 'failed');
    assert.deepEqual(overview.body.failedVerification.sort(), [deleted.id, flipped.id, truncated.id].sort());

    // Restoring without naming a snapshot takes the newest one that did not fail: the first.
    const restore = await cp.request<Operation>('POST', `/environments/${envId}/restores`, token, {
      targetServerId: serverId,
    });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    const restored = await waitFor('the restore to record its snapshot', async () => {
      const { body } = await cp.request<{ restore?: { snapshotId: string } }>(
        'GET',
        `/operations/${restore.body.id}`,
        token,
      );
      return body.restore?.snapshotId;
    });
    assert.equal(restored, good.id);
    assert.equal((await cp.finished(token, restore.body.id, 120_000)).status, 'succeeded');
  });
});
