import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import proto from '@temporalio/proto';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { teamAttribute } from '../../common/search-attributes.ts';
import { Vault } from '../../db/vault.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { openDataKey } from '../../format/data-key.ts';
import { dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { preambleBytes } from '../../format/v2/pack-layout.ts';
import { packDataKey } from '../../format/v2/pack-reader.ts';
import { parsePrintableSecretKey, publicKeyOf } from '../../format/team-key.ts';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { stackS3 } from '../helpers/control-plane.ts';
import { runProgram, startAgent, type ProgramRun } from '../helpers/processes.ts';
import { startReceiver, type RunningReceiver } from '../helpers/receiver.ts';
import { httpService } from '../helpers/services.ts';
import {
  connectTestClient,
  createTestDatabase,
  freePorts,
  stack,
  stackOutboundAllow,
  uniqueName,
  waitFor,
} from '../helpers/stack.ts';

/** Every form a secret could take in a log, a JSON payload, a dump or an object. */
function encodings(name: string, secret: Buffer): { name: string; needle: Buffer }[] {
  const forms: [string, string | Buffer][] = [
    ['raw', secret],
    ['hex', secret.toString('hex')],
    ['HEX', secret.toString('hex').toUpperCase()],
    ['base64', secret.toString('base64').replace(/=+$/, '')],
    ['base64url', secret.toString('base64url')],
  ];
  return forms.map(([form, value]) => ({ name: `${name} (${form})`, needle: Buffer.from(value) }));
}

/**
 * The whole system as separate processes (API, control-plane worker, agent) on the real services,
 * through a backup and a restore; then every place a secret could end up is searched for it.
 */
describe('no secret in Temporal histories, logs, the bucket or the database', () => {
  let api: ProgramRun;
  let worker: ProgramRun;
  let agent: ProgramRun;
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let apiUrl: string;
  let token: string;
  let teamId: string;
  const vaultMasterKey = randomBytes(32);
  const s3SecretKey = stack.s3.secretAccessKey;
  const bucket = uniqueName('leaks');
  const dataRoot = join(stack.runDir, uniqueName('agent'));
  let envId: string | undefined;
  let receiver: RunningReceiver;
  const receiverDir = join(stack.runDir, uniqueName('leaks-receiver'));

  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const res = await fetch(new URL(path, apiUrl), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const finished = (id: string) =>
    waitFor(
      `operation ${id}`,
      async () => {
        const { body } = await call<{ status: string }>('GET', `/operations/${id}`);
        return ['succeeded', 'failed', 'cancelled'].includes(body.status) ? body : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 300 },
    );

  before(async () => {
    testDb = await createTestDatabase();
    const [apiPort] = (await freePorts(1)) as [number];
    apiUrl = `http://127.0.0.1:${apiPort}`;
    const config = {
      DATABASE_URL: testDb.url,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_NAMESPACE: stack.namespace,
      STRACKT_CONTROL_TASK_QUEUE: uniqueName('control'),
      AGENT_STALE_AFTER_SECONDS: String(stack.agentStaleAfterSeconds),
      API_PORT: String(apiPort),
      VAULT_MASTER_KEY: vaultMasterKey.toString('base64'),
      STRACKT_OUTBOUND_ALLOW: stackOutboundAllow,
    };
    api = runProgram('api/main.ts', config);
    worker = runProgram('worker/control-plane.main.ts', config);
    const team = await createTeam(testDb.db, 'leaky');
    token = team.token;
    teamId = team.team.id;
    await waitFor('the API', async () => (await fetch(`${apiUrl}/openapi.json`).catch(() => undefined))?.ok);
    const server = await createServer(testDb.db, teamId, 'a');
    agent = startAgent(apiUrl, server.agentToken, dataRoot);
    await waitFor(
      'the agent',
      async () => (await call<{ connected: boolean }>('GET', `/servers/${server.server.id}`)).body.connected,
    );
    await stackS3().send(new CreateBucketCommand({ Bucket: bucket }));
    receiver = await startReceiver(receiverDir);
  });

  after(async () => {
    await Promise.all([agent?.kill(), worker?.kill(), api?.kill(), receiver?.program.kill()]);
    await rm(receiverDir, { recursive: true, force: true });
    // The environment's service outlives its agent by design: stop it, or every run leaves one behind.
    if (envId) await new ProcessRuntime(dataRoot).stop(envId);
    await testDb?.drop();
  });

  it('keeps the team key, the data keys, the bucket, receiver and webhook secrets out of all of them, through backups, a restore and a deletion', async () => {
    const created = await call<{ destination: { id: string }; teamKey: { secretKey: string } }>(
      'POST',
      '/destinations',
      {
        name: 'bucket',
        endpoint: stack.s3.endpoint,
        region: 'us-east-1',
        bucket,
        prefix: 'strackt',
        pathStyle: true,
        accessKeyId: stack.s3.accessKeyId,
        secretAccessKey: s3SecretKey,
      },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const printable = created.body.teamKey.secretKey;
    const teamSecret = parsePrintableSecretKey(printable);
    // A webhook, told of the restore below: its signing secret is searched for too.
    const hooked: string[] = [];
    const hookServer = createHttpServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        hooked.push(String((JSON.parse(raw) as { event: string }).event));
        res.end();
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    const hook = await call<{ secret: string }>('POST', '/webhooks', {
      url: `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/`,
    });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));

    const [port] = (await freePorts(1)) as [number];
    const servers = await call<{ servers: { id: string }[] }>('GET', '/servers');
    const serverId = servers.body.servers[0]!.id;
    const env = await call<{ id: string }>('POST', '/environments', {
      name: 'app',
      serverId,
      services: [httpService(port)],
    });
    envId = env.body.id;
    const deploy = await call<{ id: string }>('POST', `/environments/${env.body.id}/deploy`);
    assert.equal((await finished(deploy.body.id)).status, 'succeeded');
    await writeFile(join(dataRoot, 'volumes', env.body.id, 'webdata', 'data.bin'), randomBytes(3 << 20));
    const backup = await call<{ id: string }>('POST', `/environments/${env.body.id}/backups`, {
      destinationId: created.body.destination.id,
    });
    assert.equal((await finished(backup.body.id)).status, 'succeeded');
    const snaps = await call<{ snapshots: { id: string; objects: { manifest: string } }[] }>(
      'GET',
      `/environments/${env.body.id}/snapshots`,
    );
    const snapshot = snaps.body.snapshots[0]!;
    const restore = await call<{ id: string }>('POST', `/environments/${env.body.id}/restores`, {
      snapshotId: snapshot.id,
      targetServerId: serverId,
    });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    assert.equal((await finished(restore.body.id)).status, 'succeeded');
    await waitFor(
      'the restore.finished webhook',
      async () => hooked.includes('restore.finished') || undefined,
    );
    hookServer.close();

    // A receiver as well: a backup to it and a deletion (the prune token's work), then its credentials
    // are searched for like the others.
    const onReceiver = await call<{ destination: { id: string } }>('POST', '/destinations', {
      kind: 'receiver',
      name: 'home',
      url: receiver.url,
      fingerprint: receiver.fingerprint,
      enrolmentCode: receiver.enrolmentCode,
    });
    assert.equal(onReceiver.status, 201, JSON.stringify(onReceiver.body));
    const toReceiver = await call<{ id: string }>('POST', `/environments/${env.body.id}/backups`, {
      destinationId: onReceiver.body.destination.id,
    });
    assert.equal((await finished(toReceiver.body.id)).status, 'succeeded');
    const newest = (
      await call<{ snapshots: { id: string; destinationId: string }[] }>(
        'GET',
        `/environments/${env.body.id}/snapshots`,
      )
    ).body.snapshots.find((s) => s.destinationId === onReceiver.body.destination.id)!;
    assert.equal((await call('DELETE', `/snapshots/${newest.id}`)).status, 202);
    await waitFor('the receiver snapshot to be deleted', async () => {
      const row = await testDb.db
        .selectFrom('snapshots')
        .select('status')
        .where('id', '=', newest.id)
        .executeTakeFirst();
      return row?.status === 'deleted' || undefined;
    });
    const receiverRow = await testDb.db
      .selectFrom('destinations')
      .select(['secret_id', 'prune_secret_id'])
      .where('id', '=', onReceiver.body.destination.id)
      .executeTakeFirstOrThrow();
    const vault = new Vault(vaultMasterKey);
    const writerKey = await vault.open(testDb.db, teamId, receiverRow.secret_id, 'receiver-writer-key');
    const pruneToken = await vault.open(
      testDb.db,
      teamId,
      receiverRow.prune_secret_id!,
      'receiver-prune-token',
    );

    // The snapshot's data keys, opened here the way a customer would, to know what to look for: its
    // manifest's and each of its packs', and the team's dedup key, which servers hold.
    const s3 = stackS3();
    const headOf = async (key: string) =>
      Buffer.from(
        await (
          await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-135' }))
        ).Body!.transformToByteArray(),
      );
    const head = await headOf(snapshot.objects.manifest);
    const dataKey = openDataKey(head.subarray(32, 112), publicKeyOf(teamSecret), teamSecret);
    assert.ok(dataKey, 'the team key opens the snapshot');
    const packKeys: Buffer[] = [];
    for (const o of (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [])
      if (o.Key!.includes('/packs/'))
        packKeys.push(
          packDataKey((await headOf(o.Key!)).subarray(0, preambleBytes), { secretKey: teamSecret }),
        );
    assert.ok(packKeys.length > 0, "the snapshot's packs are searched");
    const needles = [
      ...encodings('team secret key', teamSecret),
      { name: 'team secret key (printable)', needle: Buffer.from(printable) },
      ...encodings('data key', dataKey),
      ...packKeys.flatMap((key, k) => encodings(`data key of pack ${k}`, key)),
      ...encodings('dedup key', dedupKeyOf(teamSecret)),
      ...encodings('bucket secret', Buffer.from(s3SecretKey)),
      { name: 'bucket secret (text)', needle: Buffer.from(s3SecretKey) },
      ...encodings('vault master key', vaultMasterKey),
      // The whsec_ secret and its key bytes in every form (a leak of the base64 alone is one too).
      { name: 'webhook secret', needle: Buffer.from(hook.body.secret) },
      ...encodings('webhook key', Buffer.from(hook.body.secret.replace(/^whsec_/, ''), 'base64')),
      ...encodings('receiver writer key', writerKey),
      { name: 'receiver prune token', needle: pruneToken },
    ];

    const haystacks: { name: string; bytes: Buffer }[] = [];
    const temporal = await connectTestClient();
    let workflows = 0;
    for await (const wf of temporal.workflow.list({ query: `${teamAttribute.name} = '${teamId}'` })) {
      const history = await temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      haystacks.push({
        name: `Temporal history of ${wf.workflowId}`,
        bytes: Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()),
      });
      workflows++;
    }
    await temporal.connection.close();
    assert.ok(workflows >= 4, `deploy, backup, restore and webhook histories found (${workflows})`);
    haystacks.push({ name: 'API log', bytes: Buffer.from(api.output()) });
    haystacks.push({ name: 'worker log', bytes: Buffer.from(worker.output()) });
    haystacks.push({ name: 'agent log', bytes: Buffer.from(agent.output()) });
    haystacks.push({ name: 'receiver log', bytes: Buffer.from(receiver.program.output()) });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of listed.Contents ?? []) {
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
      haystacks.push({
        name: `bucket object ${o.Key}`,
        bytes: Buffer.from(await body.Body!.transformToByteArray()),
      });
    }
    assert.ok((listed.Contents ?? []).length >= 2, 'the snapshot objects are searched');
    haystacks.push({
      name: 'pg_dump',
      bytes: execFileSync('pg_dump', ['--no-owner', testDb.url], { maxBuffer: 1 << 30 }),
    });

    const found = haystacks.flatMap((h) =>
      needles.filter((n) => h.bytes.includes(n.needle)).map((n) => `${n.name} in ${h.name}`),
    );
    assert.deepEqual(found, []);
    // The same search finds what is meant to be there: the sealed data key in the object, the team's
    // public key in the backup's history (an activity argument) and in the dump.
    const where = (needle: Buffer) => haystacks.filter((h) => h.bytes.includes(needle)).map((h) => h.name);
    assert.ok(where(head.subarray(32, 112)).some((n) => n.endsWith(snapshot.objects.manifest)));
    const publicHex = Buffer.from(publicKeyOf(teamSecret).toString('hex'));
    assert.ok(where(publicHex).some((n) => n.startsWith('Temporal history of backup-')));
    assert.ok(where(publicHex).includes('pg_dump'));
    assert.ok(where(Buffer.from(serverId)).includes('agent log'));
  });
});
