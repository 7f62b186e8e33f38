import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { sql } from 'kysely';
import { createTeam } from '../../db/teams.data.ts';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { type AgentServer, type Operation } from '../helpers/control-plane.ts';
import { startControlPlanePrograms, type ControlPlanePrograms } from '../helpers/control-plane-programs.ts';
import { startAgent } from '../helpers/processes.ts';
import { waitFor } from '../helpers/stack.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// agent-faults.test.ts's API outage for a format-2 backup, whose agent needs the API for every pack
// (its URL, then its report) where version 1's asked for part URLs 16 at a time; and backup.test.ts's
// agent killed mid-upload.
let cp: ControlPlanePrograms;
let server: AgentServer;
let killed: AgentServer;

before(async () => {
  cp = await startControlPlanePrograms({ snapshotFormat: 2 });
});

after(async () => {
  for (const each of [server, killed]) {
    await each?.agent.kill();
    if (each) await cp?.stopServices(each.root);
  }
  await cp?.stop();
});

/** The snapshot of `envId` (its only one) once verified whole by a verification operation. */
async function verifiedSnapshot(token: string, envId: string): Promise<{ id: string; sizeBytes: number }> {
  const { body } = await cp.request<{ snapshots: { id: string; sizeBytes: number }[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    token,
  );
  assert.equal(body.snapshots.length, 1);
  const verify = await cp.request<Operation>('POST', `/snapshots/${body.snapshots[0]!.id}/verify`, token, {});
  assert.equal(verify.status, 202, JSON.stringify(verify.body));
  assert.equal((await cp.finished(token, verify.body.id, 120_000)).status, 'succeeded');
  return body.snapshots[0]!;
}

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
  const snapshot = await verifiedSnapshot(team.token, envId);
  assert.ok(snapshot.sizeBytes > 384 * 1024 * 1024, `${snapshot.sizeBytes} bytes`);
});

it('resumes a format-2 backup whose agent is killed mid-upload, sending no stored chunk again', async () => {
  const team = await createTeam(cp.db, 'agent-killed-v2');
  // 384 MiB at 24 MiB/s, as above: the agent is killed with packs stored and more to send.
  const cap = { STRACKT_UPLOAD_MIB_PER_SECOND: '24' };
  killed = await cp.addServer(team.token, team.team.id, 'edge', { env: cap });
  const { destinationId } = await cp.addDestination(team.token);
  const { envId } = await cp.deployMediaEnvironment(team.token, killed.id, killed.root);
  const storedChunks = async () =>
    (
      await cp.db
        .selectFrom('pack_chunks')
        .innerJoin('packs', 'packs.id', 'pack_chunks.pack_id')
        .select(['pack_chunks.chunk_id', 'packs.id as pack'])
        .where('packs.destination_id', '=', destinationId)
        .where('packs.status', '=', 'stored')
        .execute()
    ).map((r) => ({ chunk: r.chunk_id.toString('hex'), pack: r.pack }));

  const operationId = await cp.backupUnderWay(team.token, envId, destinationId);
  const beforeKill = await waitFor(
    'three packs stored',
    async () => {
      const rows = await storedChunks();
      return new Set(rows.map((r) => r.pack)).size >= 3 ? rows : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50 },
  );
  await killed.agent.kill('SIGKILL');
  killed.agent = startAgent(cp.apiUrl, killed.agentToken, killed.root, cap);

  const op = await cp.finished(team.token, operationId, 240_000);
  assert.equal(op.status, 'succeeded', JSON.stringify(op) + killed.agent.output().slice(-3000));
  const stored = await storedChunks();
  const packOf = new Map<string, string>();
  for (const { chunk, pack } of stored) {
    assert.ok(!packOf.has(chunk), `chunk ${chunk} stored in ${packOf.get(chunk)} and again in ${pack}`);
    packOf.set(chunk, pack);
  }
  assert.ok(stored.length > beforeKill.length, 'the restarted agent stored the rest');
  const snapshot = await verifiedSnapshot(team.token, envId);
  const referenced = new Set(
    (
      await cp.db
        .selectFrom('snapshot_chunks')
        .select('chunk_id')
        .where('snapshot_id', '=', snapshot.id)
        .execute()
    ).map((r) => r.chunk_id.toString('hex')),
  );
  for (const { chunk, pack } of beforeKill) {
    assert.ok(referenced.has(chunk), `the snapshot references chunk ${chunk}, stored before the kill`);
    assert.equal(packOf.get(chunk), pack, 'in the pack it was stored in before the kill');
  }
  assert.equal(referenced.size, stored.length, 'the snapshot references every chunk stored, once');
});
