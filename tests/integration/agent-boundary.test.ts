import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import {
  startControlPlane,
  type AgentServer,
  type ApiError,
  type Operation,
} from '../helpers/control-plane.ts';
import { startObjectStore } from '../helpers/object-store.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { makeNetworkNamespace } from '../helpers/receiver.ts';
import { httpService } from '../helpers/services.ts';
import { freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { volumeHashes } from '../helpers/volume-files.ts';

const run = promisify(execFile);

/** Runs a Node script in the namespace (or on this host, without one): what it prints. */
async function node(netns: string | undefined, script: string, ...args: string[]): Promise<string> {
  const [command, ...rest] = [...(netns ? ['ip', 'netns', 'exec', netns] : []), process.execPath];
  const { stdout } = await run(command!, [...rest, '-e', script, ...args], { timeout: 15_000 });
  return stdout.trim();
}

/** A TCP connection attempt: `connected`, or the error code (ECONNREFUSED, ETIMEDOUT...). */
const connectScript = `
  const s = require('net').connect(Number(process.argv[2]), process.argv[1]);
  s.setTimeout(3000, () => { console.log('ETIMEDOUT'); process.exit(); });
  s.on('connect', () => { console.log('connected'); process.exit(); });
  s.on('error', (e) => { console.log(e.code); process.exit(); });`;
const connect = (netns: string | undefined, host: string, port: number) =>
  node(netns, connectScript, host, String(port));

const answersScript = `fetch(process.argv[1]).then((r) => console.log(r.ok), () => console.log(false));`;
/** Whether the web service on `port` answers, seen from where it runs (the namespace, or this host). */
const answers = async (netns: string | undefined, port: number) =>
  (await node(netns, answersScript, `http://127.0.0.1:${port}/`)) === 'true';

const hostAndPort = (address: string) => {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  return { host: url.hostname, port: Number(url.port) };
};

/** How each run of a host step ended on an agent (completed, failed, cancelled, gone), from its log. */
const outcomes = (agent: ProgramRun, step: string): string[] =>
  agent
    .output()
    .split('\n')
    .filter((l) => l.includes('"msg":"task ended"'))
    .map((l) => JSON.parse(l) as { step: string; outcome: string })
    .filter((e) => e.step === step)
    .map((e) => e.outcome);

// Issue 15: agents speak only HTTP(S) to the API and to their storage. The server "inside" lives in a
// network namespace from which exactly those two are reachable, so every flow below that works there
// works without Temporal or PostgreSQL.
test('an agent that reaches only the API and its object store backs up, restores, verifies and cancels', async (t) => {
  const netns = makeNetworkNamespace();
  if (!netns) {
    t.skip('this machine does not allow network namespaces (root and iproute2 needed): no isolated agent');
    return;
  }
  // Undone in reverse when the test ends, however far it got: agents and their services, the
  // control plane, the object store, the namespace.
  const undo: (() => unknown)[] = [() => netns.remove()];
  t.after(async () => {
    for (const step of undo.reverse()) await step();
  });

  // The API and a bucket server of this test's own listen on this side of the veth pair: the only
  // addresses of this machine the namespace can reach, this host reaches them too.
  const store = await startObjectStore({ host: netns.hostAddress });
  undo.push(() => store.child.kill('SIGKILL'));
  const bucket = uniqueName('boundary');
  await store.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const cp = await startControlPlane({ apiHost: netns.hostAddress });
  undo.push(() => cp.stop());
  const stopAgent = (server: AgentServer) => async () => {
    await server.agent.kill();
    await cp.stopServices(server.root);
  };
  const team = await createTeam(cp.db, 'boundaries');
  const token = team.token;
  const hostServer = await cp.addServer(token, team.team.id, 'on-host');
  undo.push(stopAgent(hostServer));
  const created = await createServer(cp.db, team.team.id, 'inside');
  const insideRoot = join(stack.runDir, uniqueName('inside'));
  const insideServer: AgentServer = {
    id: created.server.id,
    agentToken: created.agentToken,
    root: insideRoot,
    // Downloads capped at 8 MiB/s: the cancelled restore's 64 MiB take 8 s, time to cancel mid-download;
    // the other snapshots are a few KiB.
    agent: startAgent(cp.apiUrl, created.agentToken, insideRoot, { STRACKT_DOWNLOAD_MIB_PER_SECOND: '8' }, [
      'ip',
      'netns',
      'exec',
      netns.name,
    ]),
  };
  undo.push(stopAgent(insideServer));
  await cp.connected(token, insideServer.id);
  const dest = await cp.request<{ destination: { id: string } } & ApiError>('POST', '/destinations', token, {
    name: bucket,
    endpoint: store.endpoint,
    region: 'us-east-1',
    bucket,
    prefix: 'strackt',
    pathStyle: true,
    ...store.credentials,
  });
  assert.equal(dest.status, 201, JSON.stringify(dest.body));
  const destinationId = dest.body.destination.id;

  const request = <T>(method: string, path: string, body?: unknown) =>
    cp.request<T>(method, path, token, body);
  const volumeOf = (server: AgentServer, envId: string) => join(server.root, 'volumes', envId, 'webdata');
  /** Deploys one web service on the inside server: its environment id, port and volume. */
  const deployInside = async () => {
    const port = await freePort();
    const env = await request<{ id: string }>('POST', '/environments', {
      name: uniqueName('web'),
      serverId: insideServer.id,
      services: [httpService(port)],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    const deploy = await request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`);
    const done = await cp.finished(token, deploy.body.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done) + insideServer.agent.output().slice(-3000));
    return { envId: env.body.id, port, volume: volumeOf(insideServer, env.body.id) };
  };
  const restore = async (envId: string, snapshotId: string, targetServerId: string) => {
    const started = await request<Operation>('POST', `/environments/${envId}/restores`, {
      snapshotId,
      targetServerId,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    return started.body.id;
  };
  const pidOf = async (volume: string) => Number(await readFile(join(volume, 'pid'), 'utf8'));
  const alive = (pid: number) => existsSync(`/proc/${pid}`);

  await t.test(
    'from the namespace the API and the object store answer, Temporal and PostgreSQL do not',
    async () => {
      const api = hostAndPort(cp.apiUrl);
      const objects = hostAndPort(store.endpoint);
      assert.equal(api.host, netns.hostAddress);
      assert.equal(await connect(netns.name, api.host, api.port), 'connected', 'the API');
      assert.equal(await connect(netns.name, objects.host, objects.port), 'connected', 'the object store');
      const temporal = hostAndPort(stack.temporalAddress);
      const pg = hostAndPort(stack.pgBaseUrl);
      for (const [name, { host: at, port }] of Object.entries({ Temporal: temporal, PostgreSQL: pg })) {
        // Up right now, as seen from this host...
        assert.equal(await connect(undefined, at, port), 'connected', `${name} on this host`);
        // ...and out of reach from the namespace: at the address this host uses, at the namespace's
        // own loopback and at this host's veth address.
        for (const host of new Set([at, '127.0.0.1', netns.hostAddress])) {
          const outcome = await connect(netns.name, host, port);
          assert.match(outcome, /^E[A-Z]+$/, `${name} at ${host}:${port} from the namespace: ${outcome}`);
        }
      }
    },
  );

  const web = await deployInside();
  await writeFile(join(web.volume, 'marker'), 'at the snapshot');
  let snapshotId = '';

  await t.test('backs up an environment of the server in the namespace', async () => {
    assert.ok(await answers(netns.name, web.port), 'the service runs in the namespace');
    snapshotId = (await cp.backUp(token, web.envId, destinationId)).id;
    assert.deepEqual(
      outcomes(insideServer.agent, 'captureDedupSnapshot'),
      ['completed'],
      'its agent captured it',
    );
    await writeFile(join(web.volume, 'marker'), 'changed after the snapshot');
  });

  await t.test('restores that snapshot onto the host server, then back onto the namespace', async () => {
    const insidePid = await pidOf(web.volume);
    const toHost = await cp.finished(token, await restore(web.envId, snapshotId, hostServer.id), 180_000);
    assert.equal(toHost.status, 'succeeded', JSON.stringify(toHost) + hostServer.agent.output().slice(-3000));
    const moved = await request<{ serverId: string }>('GET', `/environments/${web.envId}`);
    assert.equal(moved.body.serverId, hostServer.id);
    assert.equal(await readFile(join(volumeOf(hostServer, web.envId), 'marker'), 'utf8'), 'at the snapshot');
    assert.ok(await answers(undefined, web.port), 'served on the host');
    assert.ok(!alive(insidePid) && !(await answers(netns.name, web.port)), 'stopped in the namespace');
    const hostPid = await pidOf(volumeOf(hostServer, web.envId));

    const back = await cp.finished(token, await restore(web.envId, snapshotId, insideServer.id), 180_000);
    assert.equal(back.status, 'succeeded', JSON.stringify(back) + insideServer.agent.output().slice(-3000));
    assert.equal(
      (await request<{ serverId: string }>('GET', `/environments/${web.envId}`)).body.serverId,
      insideServer.id,
    );
    // The namespace's copy had changed after the snapshot: the restore brought the snapshot's back.
    assert.equal(await readFile(join(web.volume, 'marker'), 'utf8'), 'at the snapshot');
    assert.ok(await answers(netns.name, web.port), 'served in the namespace again');
    assert.ok(!alive(hostPid) && !(await answers(undefined, web.port)), 'stopped on the host');
    assert.deepEqual(outcomes(insideServer.agent, 'fetchAndUnpack'), ['completed']);
    assert.deepEqual(outcomes(insideServer.agent, 'swapIn'), ['completed']);
  });

  await t.test('verifies the snapshot on the server in the namespace', async () => {
    const started = await request<Operation>('POST', `/snapshots/${snapshotId}/verify`, {
      serverId: insideServer.id,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 120_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + insideServer.agent.output().slice(-3000));
    assert.equal((op as Operation & { serverId: string }).serverId, insideServer.id);
    assert.ok((op.steps.find((s) => s.name === 'stream and verify')?.bytes ?? 0) > 0, JSON.stringify(op));
    assert.deepEqual(outcomes(insideServer.agent, 'verifySnapshotOnHost'), ['completed']);
    const { body } = await request<{ snapshots: { id: string; lastVerified?: { result: string } }[] }>(
      'GET',
      `/environments/${web.envId}/snapshots`,
    );
    assert.equal(body.snapshots.find((s) => s.id === snapshotId)?.lastVerified?.result, 'ok');
  });

  await t.test('cancels a restore mid-download in the namespace: data and services as before', async () => {
    const media = await deployInside();
    await writeFile(join(media.volume, 'media.bin'), randomBytes(64 * 1024 * 1024));
    await writeFile(join(media.volume, 'marker'), 'at the snapshot');
    const snapshot = await cp.backUp(token, media.envId, destinationId);
    await writeFile(join(media.volume, 'marker'), 'current');
    const before = await volumeHashes(media.volume);
    const pid = await pidOf(media.volume);

    const operationId = await restore(media.envId, snapshot.id, insideServer.id);
    const work = join(insideServer.root, 'restores', media.envId, operationId);
    await waitFor('the download to be under way', async () => existsSync(join(work, 'staging')), {
      intervalMs: 20,
      timeoutMs: 60_000,
    });
    const cancel = await request<Operation>('POST', `/operations/${operationId}/cancel`);
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    const op = await cp.finished(token, operationId, 120_000);
    assert.equal(op.status, 'cancelled', JSON.stringify(op) + insideServer.agent.output().slice(-3000));
    assert.equal(op.steps.find((s) => s.name === 'stop services')!.status, 'skipped');
    // The download needs 8 s; the agent stops it at its next heartbeat, whose answer says the task
    // was cancelled, or gone once the workflow has closed (it does not wait for the agent).
    const fetches = await waitFor('the agent to end the download', async () => {
      const ended = outcomes(insideServer.agent, 'fetchAndUnpack');
      return ended.length === 2 ? ended : undefined;
    });
    assert.ok(['cancelled', 'gone'].includes(fetches[1]!), `stopped, not ${fetches[1]}`);
    assert.deepEqual(await volumeHashes(media.volume), before, 'the data as it was');
    assert.equal(await pidOf(media.volume), pid, 'never restarted');
    assert.ok(alive(pid) && (await answers(netns.name, media.port)), 'the service still runs');
    assert.ok(!existsSync(work), 'nothing of the restore left on disk');
  });
});
