import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startAgent } from '../helpers/processes.ts';
import { stack, uniqueName, waitFor } from '../helpers/stack.ts';

interface ServerView {
  connected: boolean;
  lastSeenAt: string | null;
  enrolledAt: string | null;
}

let cp: ControlPlane;
before(async () => (cp = await startControlPlane()));
after(async () => cp.stop());

it('shows a killed agent as disconnected within 90 s, and as connected again once restarted', async () => {
  const team = await createTeam(cp.db, 'presence');
  const { server, agentToken } = await createServer(cp.db, team.team.id, 'edge-1');
  const view = async () => (await cp.request<ServerView>('GET', `/servers/${server.id}`, team.token)).body;

  const never = await view();
  assert.deepEqual([never.connected, never.lastSeenAt, never.enrolledAt], [false, null, null]);

  const dataRoot = join(stack.runDir, uniqueName('agent'));
  const first = startAgent(cp.apiUrl, agentToken, dataRoot);
  await waitFor('the agent to connect', async () => (await view()).connected, { timeoutMs: 60_000 });
  assert.ok((await view()).enrolledAt);

  // SIGKILL: no graceful shutdown, no goodbye to Temporal; only the silence tells.
  const killedAt = Date.now();
  await first.kill('SIGKILL');
  const gone = await waitFor(
    'the server to show as disconnected',
    async () => {
      const v = await view();
      return v.connected ? undefined : v;
    },
    { timeoutMs: 90_000, intervalMs: 1000 },
  );
  const tookMs = Date.now() - killedAt;
  assert.ok(tookMs <= 90_000, `took ${tookMs} ms`);
  assert.ok(
    gone.lastSeenAt && Date.parse(gone.lastSeenAt) <= killedAt + 1000,
    'last seen stays at the last poll',
  );

  const second = startAgent(cp.apiUrl, agentToken, dataRoot);
  try {
    await waitFor('the restarted agent to connect', async () => (await view()).connected, {
      timeoutMs: 60_000,
    });
  } finally {
    await second.kill();
  }
});

it('refuses an agent with a revoked or foreign token at enrolment', async () => {
  const agent = startAgent(cp.apiUrl, 'sta_not-a-real-token', join(stack.runDir, uniqueName('agent')));
  assert.equal(await agent.exited, 1);
  assert.match(
    agent.output(),
    /enrolment with the control plane at .* failed: invalid or revoked agent token/,
  );
});
