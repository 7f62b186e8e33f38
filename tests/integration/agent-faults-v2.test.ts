import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { sql } from 'kysely';
import { createTeam } from '../../db/teams.data.ts';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { type AgentServer, type Operation } from '../helpers/control-plane.ts';
import { startControlPlanePrograms, type ControlPlanePrograms } from '../helpers/control-plane-programs.ts';
import { waitFor } from '../helpers/stack.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// agent-faults.test.ts's API outage for a format-2 backup, whose agent needs the API for every pack
// (its URL, then its report) where version 1's asked for part URLs 16 at a time.
let cp: ControlPlanePrograms;
let server: AgentServer;

before(async () => {
  cp = await startControlPlanePrograms({ snapshotFormat: 2 });
});

after(async () => {
  await server?.agent.kill();
  if (server) await cp?.stopServices(server.root);
  await cp?.stop();
});

it('finishes a format-2 backup whose API is killed and restarted mid-upload, storing no chunk twice', async () => {
  const team = await createTeam(cp.db, 'faults-v2');
  // 384 MiB at 24 MiB/s: some 16 s of uploads, long enough to take the API away under them.
  server = await cp.addServer(team.token, team.team.id, 'edge', {
    env: { STRACKT_UPLOAD_MIB_PER_SECOND: '24' },
  });
  const { destinationId } = await cp.addDestination(team.token);
  const { envId } = await cp.deployMediaEnvironment(team.token, server.id, server.root);
  const packsStored = async () =>
    Number(
      (
        await cp.db
          .selectFrom('packs')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('status', '=', 'stored')
          .executeTakeFirstOrThrow()
      ).n,
    );

  const operationId = await cp.backupUnderWay(team.token, envId, destinationId);
  const { workflowId } = (await cp.request<Operation>('GET', `/operations/${operationId}`, team.token)).body;
  await waitFor('three packs stored', async () => ((await packsStored()) >= 3 ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  await cp.killApi();
  await sleep(5_000);
  await cp.startApi();

  const op = await cp.finished(team.token, operationId, 180_000);
  assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
  const events = (await cp.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const captures = events.filter(
    (e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt !== 1,
  );
  assert.deepEqual(captures, [], 'every step finished at its first attempt: the agent waited out the outage');
  const twice = await cp.db
    .selectFrom('pack_chunks')
    .select('chunk_id')
    .groupBy('chunk_id')
    .having(sql`count(*)`, '>', 1)
    .execute();
  assert.deepEqual(twice, [], 'no chunk was stored twice');
  const { body } = await cp.request<{ snapshots: { id: string; sizeBytes: number }[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    team.token,
  );
  assert.equal(body.snapshots.length, 1);
  assert.ok(body.snapshots[0]!.sizeBytes > 384 * 1024 * 1024, `${body.snapshots[0]!.sizeBytes} bytes`);

  const verify = await cp.request<Operation>(
    'POST',
    `/snapshots/${body.snapshots[0]!.id}/verify`,
    team.token,
    {},
  );
  assert.equal(verify.status, 202, JSON.stringify(verify.body));
  assert.equal((await cp.finished(team.token, verify.body.id, 120_000)).status, 'succeeded');
});
