import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { groupAlive } from '../../agent/process-groups.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { httpService, postgresService } from '../helpers/services.ts';
import { freePort, freePorts, stack, uniqueName } from '../helpers/stack.ts';

describe('deploy and stop an environment through the API on a real agent', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let token: string;
  let serverId: string;
  let dataRoot: string;

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'deployers');
    token = team.token;
    const { server, agentToken } = await createServer(cp.db, team.team.id, 'local');
    serverId = server.id;
    dataRoot = join(stack.runDir, uniqueName('agent'));
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    await cp.connected(token, serverId);
  });

  after(async () => {
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
  });

  it('runs PostgreSQL and an HTTP service until healthy, then stops both process groups', async () => {
    const [pgPort, webPort] = (await freePorts(2)) as [number, number];
    const created = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'shop',
      serverId,
      services: [postgresService(pgPort), httpService(webPort)],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const envId = created.body.id;

    const started = await cp.request<{ id: string; status: string }>(
      'POST',
      `/environments/${envId}/deploy`,
      token,
    );
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const second = await cp.request<{ error: { code: string; message: string } }>(
      'POST',
      `/environments/${envId}/deploy`,
      token,
    );
    assert.equal(second.status, 409);
    assert.equal(second.body.error.code, 'operation_in_progress');
    assert.ok(second.body.error.message.includes(started.body.id), second.body.error.message);

    const deployed = await cp.finished(token, started.body.id);
    assert.equal(deployed.status, 'succeeded', JSON.stringify(deployed) + agent.output());
    assert.deepEqual(
      deployed.steps.map((s) => [s.name, s.status]),
      [
        ['start services', 'succeeded'],
        ['health check', 'succeeded'],
      ],
    );

    // The database really works, in its volume on this server's data root.
    const sql = postgres({ host: '127.0.0.1', port: pgPort, user: 'postgres', database: 'postgres', max: 1 });
    await sql`create table t (v int)`;
    await sql`insert into t values (42)`;
    assert.deepEqual([...(await sql`select v from t`)], [{ v: 42 }]);
    await sql.end();
    const pgPid = Number(
      (await readFile(join(dataRoot, 'volumes', envId, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0],
    );

    // The web service sees its own variables, its volume, and nothing of the agent's (its token above all).
    const vars = (await (await fetch(`http://127.0.0.1:${webPort}/`)).json()) as string[];
    assert.ok(vars.includes('GREETING') && vars.includes('STRACKT_VOLUME_WEBDATA'), vars.join());
    assert.ok(!vars.some((v) => v.startsWith('STRACKT_AGENT') || v.startsWith('TEMPORAL')), vars.join());
    const webPid = Number(await readFile(join(dataRoot, 'volumes', envId, 'webdata', 'pid'), 'utf8'));
    assert.ok(groupAlive(pgPid) && groupAlive(webPid));

    // The workflow is findable by its search attributes.
    const found = [];
    for await (const wf of cp.temporal.workflow.list({
      query: `StracktEnvironment = '${envId}' AND StracktOperation = 'deploy'`,
    })) {
      found.push(wf.workflowId);
    }
    assert.deepEqual(found, [deployed.workflowId]);
    // The Temporal UI says what it is in a line, and lists the ids on its page.
    const described = await cp.temporal.workflow.getHandle(deployed.workflowId).describe();
    assert.equal(await described.staticSummary(), 'deploy shop on local');
    const details = (await described.staticDetails()) ?? '';
    for (const id of [deployed.id, envId, serverId]) assert.ok(details.includes(id), details);

    const stopping = await cp.request<{ id: string }>('POST', `/environments/${envId}/stop`, token);
    assert.equal(stopping.status, 202);
    const stopped = await cp.finished(token, stopping.body.id);
    assert.equal(stopped.status, 'succeeded', JSON.stringify(stopped));
    assert.equal(groupAlive(pgPid), false, 'the PostgreSQL process group is gone');
    assert.equal(groupAlive(webPid), false, 'the web process group is gone');
    await assert.rejects(fetch(`http://127.0.0.1:${webPort}/`));
  });

  it('reports a service that cannot become healthy as a failed deploy with the reason', async () => {
    const port = await freePort();
    const created = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'broken',
      serverId,
      services: [{ name: 'api', command: 'echo starting; exit 3', healthCheck: { type: 'tcp', port } }],
    });
    const op = await cp.request<{ id: string }>('POST', `/environments/${created.body.id}/deploy`, token);
    const done = await cp.finished(token, op.body.id);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /ServiceExited: service api exited with code 3 before becoming healthy/);
    assert.equal(done.steps[1]!.status, 'failed');
  });
});
