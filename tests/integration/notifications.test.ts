import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { sql } from 'kysely';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { stackS3, startControlPlane, type ApiError, type ControlPlane } from '../helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';

describe('nobody finds out too late: missed backups and webhooks', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let token: string;
  let serverId: string;
  let destinationId: string;
  let bucket: string;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let webhookId: string;
  const dataRoot = join(stack.runDir, uniqueName('agent'));

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'watchers');
    token = team.token;
    const server = await createServer(cp.db, team.team.id, 'a');
    serverId = server.server.id;
    agent = startAgent(cp.apiUrl, server.agentToken, dataRoot);
    await cp.connected(token, serverId);
    ({ destinationId, bucket } = await cp.addDestination(token));
    receiver = await startWebhookReceiver();
    const hook = await cp.request<{ webhook: { id: string; events: string[] }; secret: string }>(
      'POST',
      '/webhooks',
      token,
      { url: receiver.url },
    );
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    assert.deepEqual(hook.body.webhook.events, [
      'backup.failed',
      'backup.missed',
      'restore.finished',
      'restore.failed',
      'snapshot.verification_failed',
    ]);
    webhookId = hook.body.webhook.id;
    assert.match(hook.body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a Standard Webhooks secret of 32 bytes');
    receiver.secret.value = hook.body.secret;
  });

  after(async () => {
    for (const { id } of await cp.db.selectFrom('backup_schedules').select('id').execute())
      await cp.temporal.schedule
        .getHandle(`backup-schedule-${id}`)
        .delete()
        .catch(() => {});
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
    await receiver?.close();
  });

  const environment = (extra: Record<string, unknown> = {}) =>
    cp.deployWebEnvironment(token, serverId, extra);

  it('never shows the signing secret again, and refuses a URL with credentials in it', async () => {
    const listed = await cp.request<{ webhooks: Record<string, unknown>[] }>('GET', '/webhooks', token);
    assert.equal(listed.body.webhooks.length, 1);
    assert.ok(!JSON.stringify(listed.body).includes(receiver.secret.value.toString()));
    const bad = await cp.request<{ error: { field: string } }>('POST', '/webhooks', token, {
      url: 'https://user:pw@example.com/hook',
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.field, 'url');
  });

  it('refuses an event it does not know, naming the field, on creation and on change', async () => {
    const created = await cp.request<{ error: { field: string; message: string } }>(
      'POST',
      '/webhooks',
      token,
      {
        url: receiver.url,
        events: ['backup.failed', 'backup.exploded'],
      },
    );
    assert.equal(created.status, 422, JSON.stringify(created.body));
    assert.equal(created.body.error.field, 'events.1');
    assert.match(created.body.error.message, /backup\.succeeded/, 'the message lists the known events');
    const changed = await cp.request<{ error: { field: string } }>('PATCH', `/webhooks/${webhookId}`, token, {
      events: ['backup.exploded'],
    });
    assert.equal(changed.status, 422, JSON.stringify(changed.body));
    assert.equal(changed.body.error.field, 'events.0');
    const none = await cp.request<{ error: { field: string } }>('PATCH', `/webhooks/${webhookId}`, token, {
      events: [],
    });
    assert.equal(none.status, 422);
    assert.equal(none.body.error.field, 'events');
    const listed = await cp.request<{ webhooks: { events: string[] }[] }>('GET', '/webhooks', token);
    assert.ok(!listed.body.webhooks[0]!.events.includes('backup.exploded' as never), 'nothing was changed');
    assert.equal(
      (await cp.request('PATCH', '/webhooks/whk_nope', token, { events: ['backup.failed'] })).status,
      404,
    );
  });

  it('tells a failed backup, signed, retrying a receiver that answered 500 first', async () => {
    const envId = await environment({ backupHooks: { pre: 'echo "no space for the dump" >&2; exit 3' } });
    receiver.answers.push(500);
    const started = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
      destinationId,
    });
    assert.equal((await cp.finished(token, started.body.id)).status, 'failed');
    const got = await waitFor(
      'the backup.failed webhook',
      async () =>
        receiver.received.find((r) => r.event === 'backup.failed' && r.body.operationId === started.body.id),
      { timeoutMs: 60_000 },
    );
    assert.ok(got.valid, 'the signature checks out with the secret');
    assert.match(String(got.body.error), /no space for the dump/);
    const log = await cp.request<{
      deliveries: { id: string; status: string; attempts: number; lastStatusCode: number }[];
    }>('GET', `/webhooks/${webhookId}/deliveries`, token);
    const delivery = log.body.deliveries.find((d) => d.id === got.delivery)!;
    assert.equal(delivery.status, 'delivered');
    assert.equal(delivery.attempts, 2, 'the 500 was retried');
    assert.equal(delivery.lastStatusCode, 200);
  });

  it('tells a backup that succeeded only to a webhook subscribed to it, verified by standardwebhooks', async () => {
    const allGood = await startWebhookReceiver();
    let madeId: string | undefined;
    try {
      const made = await cp.request<{ webhook: { id: string; events: string[] }; secret: string }>(
        'POST',
        '/webhooks',
        token,
        { url: allGood.url, events: ['backup.failed'] },
      );
      assert.equal(made.status, 201, JSON.stringify(made.body));
      madeId = made.body.webhook.id;
      allGood.secret.value = made.body.secret;
      // Subscribed afterwards, listed in any order and twice: stored once each, in a fixed order.
      const changed = await cp.request<{ id: string; events: string[] }>(
        'PATCH',
        `/webhooks/${made.body.webhook.id}`,
        token,
        { events: ['backup.failed', 'backup.succeeded', 'backup.failed'] },
      );
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      assert.deepEqual(changed.body.events, ['backup.succeeded', 'backup.failed']);
      const listed = await cp.request<{ webhooks: { id: string; events: string[] }[] }>(
        'GET',
        '/webhooks',
        token,
      );
      assert.deepEqual(listed.body.webhooks.find((w) => w.id === made.body.webhook.id)!.events, [
        'backup.succeeded',
        'backup.failed',
      ]);

      const envId = await environment();
      const snapshot = await cp.backUp(token, envId, destinationId);
      const got = await waitFor('the backup.succeeded webhook', async () =>
        allGood.received.find((r) => r.event === 'backup.succeeded' && r.body.snapshotId === snapshot.id),
      );
      assert.equal(got.body.environmentId, envId);
      assert.equal(got.body.status, 'succeeded');
      assert.equal(got.body.sizeBytes, snapshot.sizeBytes);

      // What a receiver writes: the standardwebhooks package's verifier, with the secret as shown.
      const verified = new Webhook(made.body.secret).verify(got.raw, got.headers);
      assert.deepEqual(verified, got.body);
      assert.ok(got.valid);
      assert.match(got.headers['webhook-id']!, /^whd_/);
      assert.equal(got.headers['webhook-id'], got.delivery);
      assert.match(got.headers['webhook-signature']!, /^v1,[A-Za-z0-9+/]{43}=$/);
      assert.ok(Math.abs(Number(got.headers['webhook-timestamp']) - Date.now() / 1000) < 120);
      assert.ok(
        !Object.keys(got.headers).some((h) => h.startsWith('x-strackt-')),
        'no headers of the old scheme',
      );
      // A body changed on the way, another delivery's id, or another webhook's secret: all refused.
      const forged = got.raw.replace(`"status":"succeeded"`, `"status":"failed"`);
      assert.notEqual(forged, got.raw);
      assert.throws(
        () => new Webhook(made.body.secret).verify(forged, got.headers),
        WebhookVerificationError,
      );
      assert.throws(
        () => new Webhook(made.body.secret).verify(got.raw, { ...got.headers, 'webhook-id': 'whd_other' }),
        WebhookVerificationError,
      );
      assert.throws(
        () => new Webhook(receiver.secret.value).verify(got.raw, got.headers),
        WebhookVerificationError,
      );

      // Once for the operation, and never to the webhook that did not ask for it. Both deliveries
      // were queued together, so the first webhook's log is complete for this backup by now.
      const deliveries = async (id: string) =>
        (
          await cp.request<{ deliveries: { event: string; payload: { operationId: string } }[] }>(
            'GET',
            `/webhooks/${id}/deliveries`,
            token,
          )
        ).body.deliveries.filter((d) => d.payload.operationId === got.body.operationId);
      assert.deepEqual(
        (await deliveries(made.body.webhook.id)).map((d) => d.event),
        ['backup.succeeded'],
      );
      assert.deepEqual(await deliveries(webhookId), []);
      assert.ok(!receiver.received.some((r) => r.event === 'backup.succeeded'));
    } finally {
      // Gone before its receiver, so the later tests' backups queue nothing for it.
      if (madeId) await cp.request('DELETE', `/webhooks/${madeId}`, token);
      await allGood.close();
    }
  });

  it('records runs that never started as missed, and tells them', async () => {
    const envId = await environment();
    const created = await cp.request<{ id: string; temporalScheduleId: string }>(
      'POST',
      `/environments/${envId}/schedules`,
      token,
      { destinationId, preset: 'hourly', minute: 7 },
    );
    assert.equal(created.status, 201);
    // Paused in Temporal behind strackt's back, for the last three hours.
    await cp.temporal.schedule.getHandle(created.body.temporalScheduleId).pause('by hand');
    await sql`update backup_schedules set checked_until = now() - interval '3 hours' where id = ${created.body.id}`.execute(
      cp.db,
    );
    const swept = await cp.temporal.workflow.execute('watchMissedBackups', {
      taskQueue: cp.controlTaskQueue,
      workflowId: uniqueName('watch'),
    });
    assert.ok((swept as { missed: number }).missed >= 2, JSON.stringify(swept));
    const { body } = await cp.request<{
      missedBackups: { status: string; reason: string; scheduleId: string }[];
    }>('GET', `/environments/${envId}/missed-backups`, token);
    assert.ok(body.missedBackups.length >= 2);
    assert.ok(body.missedBackups.every((m) => m.status === 'missed' && /never started/.test(m.reason)));
    await waitFor('the backup.missed webhooks', async () =>
      receiver.received.filter((r) => r.event === 'backup.missed' && r.body.environmentId === envId).length >=
      2
        ? true
        : undefined,
    );
  });

  it('tells a restore that finished and one that failed', async () => {
    const envId = await environment();
    const snapshot = await cp.backUp(token, envId, destinationId);
    const restore = async () => {
      const started = await cp.request<{ id: string }>('POST', `/environments/${envId}/restores`, token, {
        snapshotId: snapshot.id,
        targetServerId: serverId,
      });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      return { id: started.body.id, op: await cp.finished(token, started.body.id, 120_000) };
    };
    const overview = await cp.request<{
      lastSuccessfulBackup: { snapshotId: string; sizeBytes: number };
      storage: { destinationId: string; snapshots: number; bytes: number }[];
    }>('GET', `/environments/${envId}/backups`, token);
    assert.equal(overview.body.lastSuccessfulBackup.snapshotId, snapshot.id);
    assert.deepEqual(overview.body.storage, [{ destinationId, snapshots: 1, bytes: snapshot.sizeBytes }]);
    const good = await restore();
    assert.equal(good.op.status, 'succeeded', JSON.stringify(good.op));
    // The snapshot's manifest gone from the bucket: the next restore fails.
    await stackS3().send(new DeleteObjectCommand({ Bucket: bucket, Key: snapshot.objects.manifest }));
    const bad = await restore();
    assert.equal(bad.op.status, 'failed');
    for (const [event, id] of [
      ['restore.finished', good.id],
      ['restore.failed', bad.id],
    ] as const) {
      const got = await waitFor(`the ${event} webhook`, async () =>
        receiver.received.find((r) => r.event === event && r.body.operationId === id),
      );
      assert.ok(got.valid, 'the signature checks out with the secret');
      assert.equal(got.body.environmentId, envId);
    }
  });

  it('records a run whose agent is stopped as missed, and the receiver gets it signed', async () => {
    const envId = await environment();
    const created = await cp.request<{ id: string }>('POST', `/environments/${envId}/schedules`, token, {
      destinationId,
      preset: 'daily',
      at: '04:00',
    });
    await agent.kill();
    await waitFor(
      'the server to show as disconnected',
      async () => {
        const { body } = await cp.request<{ connected: boolean }>('GET', `/servers/${serverId}`, token);
        return body.connected === false || undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    // The run starts, finds the agent offline and is recorded as skipped: run now says so.
    const triggered = await cp.request<ApiError>('POST', `/schedules/${created.body.id}/trigger`, token);
    assert.equal(triggered.status, 409, JSON.stringify(triggered.body));
    assert.equal(triggered.body.error.code, 'run_skipped');
    assert.match(triggered.body.error.message, /agent of server a .* is offline/);
    const got = await waitFor(
      'the backup.missed webhook',
      async () =>
        receiver.received.find((r) => r.event === 'backup.missed' && r.body.environmentId === envId),
      { timeoutMs: 60_000 },
    );
    assert.ok(got.valid, 'the signature checks out with the secret');
    assert.match(String(got.body.reason), /agent of server a .* is offline/);
    const { body } = await cp.request<{ missedBackups: { status: string; reason: string }[] }>(
      'GET',
      `/environments/${envId}/missed-backups`,
      token,
    );
    assert.equal(body.missedBackups.length, 1);
    assert.equal(body.missedBackups[0]!.status, 'skipped');

    // The environment's backups at a glance: no snapshot yet, the next run, the missed one, the rule.
    const overview = await cp.request<{
      lastSuccessfulBackup: unknown;
      nextRuns: { scheduleId: string; local: string }[];
      missedRuns: { count: number; latest: { reason: string }[] };
      storage: unknown[];
      schedules: { retentionInWords: string }[];
    }>('GET', `/environments/${envId}/backups`, token);
    assert.equal(overview.status, 200, JSON.stringify(overview.body));
    assert.equal(overview.body.lastSuccessfulBackup, null);
    assert.deepEqual(overview.body.storage, []);
    assert.equal(overview.body.nextRuns[0]!.scheduleId, created.body.id);
    assert.match(overview.body.nextRuns[0]!.local, /T04:00:00\+00:00$/);
    assert.equal(overview.body.missedRuns.count, 1);
    assert.match(overview.body.missedRuns.latest[0]!.reason, /offline/);
    assert.deepEqual(
      overview.body.schedules.map((s) => s.retentionInWords),
      ['everything (no rule)'],
    );
  });
});
