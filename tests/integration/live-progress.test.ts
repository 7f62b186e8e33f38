import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createTeam } from '../../db/teams.data.ts';
import {
  startControlPlane,
  type AgentServer,
  type ControlPlane,
  type Operation,
} from '../helpers/control-plane.ts';
import type { OperationStep } from '../../common/operations.ts';
import { progressQuery } from '../../workflows/operation-tracker.ts';

interface LiveOperation extends Operation {
  transfer: {
    stepName: string;
    step: string;
    bytes: number;
    totalBytes: number | null;
    bytesPerSecond: number | null;
    etaSeconds: number | null;
  } | null;
}

let cp: ControlPlane;
let server: AgentServer | undefined;
before(async () => (cp = await startControlPlane()));
after(async () => {
  await server?.agent.kill();
  if (server) await cp.stopServices(server.root);
  await cp.stop();
});

/** The operation's server-sent events, parsed, until it ends. */
async function* events(token: string, operationId: string): AsyncGenerator<LiveOperation> {
  const res = await cp.app.request(`/operations/${operationId}/events`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body!) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const data = buffered
        .slice(0, end)
        .split('\n')
        .find((line) => line.startsWith('data: '));
      buffered = buffered.slice(end + 2);
      if (data) yield JSON.parse(data.slice('data: '.length)) as LiveOperation;
    }
  }
}

it('shows a throttled backup’s bytes growing, with rate and time left, while its upload runs', async () => {
  const { team, token } = await createTeam(cp.db, 'live');
  // 8 MiB/s: the 128 MiB of random bytes below take ~16 s to upload, reported part by part.
  server = await cp.addServer(token, team.id, 'a', { env: { STRACKT_UPLOAD_MIB_PER_SECOND: '8' } });
  const envId = await cp.deployWebEnvironment(token, server.id);
  await writeFile(
    join(server.root, 'volumes', envId, 'webdata', 'media.bin'),
    randomBytes(128 * 1024 * 1024),
  );
  const { destinationId } = await cp.addDestination(token);

  const started = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
    destinationId,
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));

  const seen: NonNullable<LiveOperation['transfer']>[] = [];
  let last: LiveOperation | undefined;
  let queried: OperationStep | undefined;
  const workflow = cp.temporal.workflow.getHandle(
    (await cp.request<{ workflowId: string }>('GET', `/operations/${started.body.id}`, token)).body
      .workflowId,
  );
  for await (const op of events(token, started.body.id)) {
    last = op;
    const upload = op.steps.find((s) => s.name === 'capture and upload');
    if (op.transfer && upload?.status === 'running') seen.push(op.transfer);
    // The workflow's own progress query shows the running step's figures too, from the API's signal.
    // (signalled once in each 10 s window: the first may be from before a byte moved)
    if (!queried?.transfer?.bytes && seen.length >= 2 && upload?.status === 'running')
      queried = (await workflow.query(progressQuery)).steps.find((s) => s.name === 'capture and upload');
  }
  assert.ok(
    queried?.transfer && queried.transfer.bytes > 0,
    `the progress query: ${JSON.stringify(queried)}`,
  );
  assert.equal(queried.transfer.step, 'captureDedupSnapshot');
  assert.equal(last?.status, 'succeeded', JSON.stringify(last));
  assert.equal(last?.transfer, null, 'no live figures once the operation has ended');

  // Three successive events, before the step ended, each with more bytes than the one before.
  const growing = seen.filter((t, i) => i === 0 || t.bytes > seen[i - 1]!.bytes);
  assert.ok(growing.length >= 3, `bytes grew in ${growing.length} events: ${JSON.stringify(seen)}`);
  for (const t of seen) {
    assert.equal(t.stepName, 'capture and upload');
    assert.equal(t.step, 'captureDedupSnapshot');
  }
  const rated = seen.filter((t) => t.bytesPerSecond !== null && t.bytesPerSecond > 0);
  assert.ok(rated.length > 0, 'a rate once bytes moved');
  // 8 MiB/s, give or take the parts landing two at a time.
  const rate = rated.at(-1)!.bytesPerSecond!;
  assert.ok(rate > 2 * 1024 * 1024 && rate < 32 * 1024 * 1024, `rate ${rate} B/s`);
  const withTotal = seen.filter((t) => t.totalBytes !== null);
  assert.ok(withTotal.length > 0, 'the total once the capture is whole');
  assert.ok(
    withTotal.some((t) => t.etaSeconds !== null && t.etaSeconds > 0),
    `a time left while bytes remain: ${JSON.stringify(withTotal)}`,
  );
  const upload = last!.steps.find((s) => s.name === 'capture and upload')!;
  assert.ok(
    seen.every((t) => t.bytes <= upload.bytes!),
    'never more than the step moved in the end',
  );
});
