import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTeam } from '../../db/teams.data.ts';
import { pinnedRequest } from '../../storage/pinned-client.ts';
import { signedObjectUrl } from '../../storage/receiver-urls.ts';
import {
  startControlPlane,
  type AgentServer,
  type ApiError,
  type ControlPlane,
  type Operation,
} from '../helpers/control-plane.ts';
import { makeNetworkNamespace, startReceiver, type RunningReceiver } from '../helpers/receiver.ts';
import { documentedScript } from '../helpers/documented-script.ts';
import { repoRoot, stack, uniqueName, waitFor } from '../helpers/stack.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function filesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort())
    if (name !== 'pid') out[name] = sha256(await readFile(join(dir, name)));
  return out;
}

describe('backups to a receiver the customer runs', () => {
  let cp: ControlPlane;
  let token: string;
  let teamId: string;
  let a: AgentServer;
  let b: AgentServer;
  const netns = makeNetworkNamespace();
  const dataDir = join(stack.runDir, uniqueName('receiver-data'));
  let receiver: RunningReceiver;
  let destinationId: string;
  let teamKey: string;

  const addServer = (name: string, env: Record<string, string> = {}) =>
    cp.addServer(token, teamId, name, { env });

  const addReceiver = (name: string, r: RunningReceiver, extra: Record<string, unknown> = {}) =>
    cp.request<
      {
        destination: { id: string; receiver: { url: string; fingerprint: string } };
        teamKey: { secretKey: string } | null;
      } & ApiError
    >('POST', '/destinations', token, {
      kind: 'receiver',
      name,
      url: r.url,
      fingerprint: r.fingerprint,
      enrolmentCode: r.enrolmentCode,
      ...extra,
    });

  const backUp = async (envId: string, destination = destinationId) => {
    const started = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
      destinationId: destination,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    return started.body.id;
  };

  /** Files (not folders) under a folder of the receiver's data directory, by path relative to it. */
  const filesUnder = (dir: string) =>
    readdir(dir, { recursive: true, withFileTypes: true }).then(
      (entries) =>
        entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)),
      () => [] as string[],
    );
  const objectsOn = (dir: string) => filesUnder(join(dir, 'objects'));

  before(async () => {
    // Version 1's objects and uploads on a receiver; agent-packs.test.ts and restore-v2.test.ts send and read
    // format 2's packs there.
    cp = await startControlPlane({ snapshotFormat: 1 });
    const team = await createTeam(cp.db, 'receivers');
    token = team.token;
    teamId = team.team.id;
    a = await addServer('a');
    b = await addServer('b');
    receiver = await startReceiver(dataDir, netns);
    const created = await addReceiver('home', receiver);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    destinationId = created.body.destination.id;
    teamKey = created.body.teamKey!.secretKey;
  });

  after(async () => {
    for (const server of [a, b]) {
      await server?.agent.kill();
      if (server) await cp?.stopServices(server.root);
    }
    await receiver?.program.kill();
    await cp?.stop();
    netns?.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('enrols once: a wrong code, a wrong fingerprint and a second enrolment are refused and save nothing', async () => {
    const other = join(stack.runDir, uniqueName('receiver-other'));
    const fresh = await startReceiver(other, netns);
    try {
      const wrongPin = await addReceiver('x1', fresh, { fingerprint: `00:${fresh.fingerprint.slice(3)}` });
      assert.equal(wrongPin.status, 422);
      assert.equal(wrongPin.body.error.code, 'certificate_mismatch');
      assert.equal(wrongPin.body.error.field, 'fingerprint', 'the field to change is named');
      const wrongCode = await addReceiver('x2', fresh, {
        enrolmentCode: randomBytes(18).toString('base64url'),
      });
      assert.equal(wrongCode.status, 422);
      assert.equal(wrongCode.body.error.code, 'bad_enrolment_code');
      assert.equal(wrongCode.body.error.field, 'enrolmentCode');
      const again = await addReceiver('x3', receiver);
      assert.equal(again.status, 422, 'the first receiver is enrolled already');
      assert.equal(again.body.error.code, 'already_enrolled');
      assert.equal(again.body.error.field, undefined, 'no field: the fix is on the receiver');
      const noPin = await addReceiver('x4', fresh, { fingerprint: undefined });
      assert.equal(noPin.status, 422);
      assert.match(noPin.body.error.message, /^fingerprint: /);
      const listed = await cp.request<{ destinations: { name: string }[] }>('GET', '/destinations', token);
      assert.deepEqual(
        listed.body.destinations.map((d) => d.name),
        ['home'],
        'no destination was saved for a refused enrolment',
      );
      assert.ok(!existsSync(join(other, 'credentials.json')), 'the fresh receiver was never enrolled');
    } finally {
      await fresh.program.kill();
      await rm(other, { recursive: true, force: true });
    }
  });

  it('backs up to the receiver across a real interface and restores from it onto a second server', async (t) => {
    if (!netns) t.diagnostic('no network namespaces here: the receiver listens on loopback');
    const envId = await cp.deployWebEnvironment(token, a.id);
    const volume = join(a.root, 'volumes', envId, 'webdata');
    await writeFile(join(volume, 'notes.txt'), 'kept on the customer’s own server');
    await writeFile(join(volume, 'blob.bin'), randomBytes(40 * 1024 * 1024));
    const atSnapshot = await filesOf(volume);
    const backup = await cp.finished(token, await backUp(envId), 180_000);
    assert.equal(backup.status, 'succeeded', JSON.stringify(backup) + a.agent.output().slice(-2000));
    const { body } = await cp.request<{
      snapshots: { id: string; sizeBytes: number; objects: { data: string; manifest: string } }[];
    }>('GET', `/environments/${envId}/snapshots`, token);
    const snapshot = body.snapshots[0]!;
    const stored = await objectsOn(dataDir);
    assert.ok(stored.includes(snapshot.objects.data), `${snapshot.objects.data} in ${stored.join(', ')}`);
    assert.ok(stored.includes(snapshot.objects.manifest));
    assert.equal((await stat(join(dataDir, 'objects', snapshot.objects.data))).size, snapshot.sizeBytes);
    assert.deepEqual(await filesUnder(join(dataDir, 'uploads')), [], 'no upload is left');

    // Without strackt: the guide's commands on the receiver's files, with the team key alone.
    const work = join(stack.runDir, uniqueName('by-hand'));
    await mkdir(work, { recursive: true });
    await writeFile(join(work, 'team.key'), teamKey, { mode: 0o600 });
    execFileSync('bash', ['-c', documentedScript('receiver-restore-script')], {
      cwd: work,
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', // Debian's python3
        HOME: work,
        RECEIVER_DATA: dataDir,
        KIT: join(repoRoot, 'restore-kit'),
      },
      stdio: 'pipe',
    });
    assert.deepEqual(await filesOf(join(work, 'restored', 'webdata')), atSnapshot);
    await rm(work, { recursive: true, force: true });

    await writeFile(join(volume, 'notes.txt'), 'changed after the snapshot');
    const started = await cp.request<Operation>('POST', `/environments/${envId}/restores`, token, {
      snapshotId: snapshot.id,
      targetServerId: b.id,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + b.agent.output().slice(-2000));
    assert.deepEqual(await filesOf(join(b.root, 'volumes', envId, 'webdata')), atSnapshot);

    // The control plane's own credentials, as the receiver's enrolment gave them: a writer URL cannot
    // delete or overwrite what is stored.
    const writerKey = await writerKeyOf(destinationId);
    const url = (action: 'PUT' | 'DELETE') =>
      new URL(signedObjectUrl(receiver.url, writerKey, action as 'PUT', snapshot.objects.data, 600, 1 << 20));
    const del = await answer(url('DELETE'), 'DELETE');
    assert.equal(del.status, 403);
    const put = await answer(url('PUT'), 'PUT', randomBytes(16));
    assert.equal(put.status, 409);
    const wrong = new URL(signedObjectUrl(receiver.url, randomBytes(32), 'GET', snapshot.objects.data, 600));
    assert.equal((await answer(wrong, 'GET')).status, 401, 'a wrong writer key is refused');
    assert.equal((await stat(join(dataDir, 'objects', snapshot.objects.data))).size, snapshot.sizeBytes);
  });

  async function writerKeyOf(id: string): Promise<Buffer> {
    const row = await cp.db
      .selectFrom('destinations')
      .select('secret_id')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return cp.vault.open(cp.db, teamId, row.secret_id, 'receiver-writer-key');
  }

  async function answer(url: URL, method: string, body?: Buffer): Promise<{ status: number }> {
    const req = await pinnedRequest(
      url,
      { fingerprint: receiver.fingerprint },
      {
        method,
        headers: body
          ? { 'content-length': String(body.length), 'x-strackt-sha256': sha256(body) }
          : undefined,
      },
    );
    return new Promise((resolve, reject) => {
      req.once('response', (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode! }));
      });
      req.once('error', reject);
      req.end(body);
    });
  }

  it('resumes when the receiver is killed mid-upload, and never lists a partial object', async () => {
    // A bandwidth cap (an agent setting) makes the upload last long enough to kill the receiver during it.
    const slow = await addServer('slow', { STRACKT_UPLOAD_MIB_PER_SECOND: '24' });
    try {
      const { envId } = await cp.deployMediaEnvironment(token, slow.id, slow.root);
      const operationId = await backUp(envId);
      const partsIn = async () =>
        (await filesUnder(join(dataDir, 'uploads'))).filter((n) => /\/\d+\.[0-9a-f]{64}$/.test(n)).length;
      const before = await waitFor(
        'two parts on the receiver',
        async () => ((await partsIn()) >= 2 ? partsIn() : undefined),
        {
          timeoutMs: 60_000,
          intervalMs: 50,
        },
      );
      await receiver.program.kill('SIGKILL');
      const objectsBefore = await objectsOn(dataDir);
      await new Promise((r) => setTimeout(r, 3000)); // the agent meets a receiver that is not there
      receiver = await receiver.restart();
      const op = await cp.finished(token, operationId, 240_000);
      assert.equal(op.status, 'succeeded', JSON.stringify(op) + slow.agent.output().slice(-3000));
      const note = op.steps.find((s) => s.name === 'capture and upload')?.note ?? '';
      const resumed = /resumed: (\d+) of \d+ parts were already stored$/.exec(note);
      assert.ok(resumed, `the step says the upload resumed: ${JSON.stringify(op.steps)}`);
      assert.ok(Number(resumed[1]) >= before, `${resumed[1]} parts kept, ${before} were in before the kill`);
      const { body } = await cp.request<{ snapshots: { objects: { data: string }; sizeBytes: number }[] }>(
        'GET',
        `/environments/${envId}/snapshots`,
        token,
      );
      assert.ok(!objectsBefore.includes(body.snapshots[0]!.objects.data), 'no object while the upload ran');
      assert.equal(
        (await stat(join(dataDir, 'objects', body.snapshots[0]!.objects.data))).size,
        body.snapshots[0]!.sizeBytes,
      );
      assert.deepEqual(await filesUnder(join(dataDir, 'uploads')), [], 'the parts are joined and gone');
    } finally {
      await slow.agent.kill();
      await cp.stopServices(slow.root);
    }
  });

  it('does not send a byte to a receiver whose certificate is not the pinned one', async () => {
    const envId = await cp.deployWebEnvironment(token, a.id);
    // Another certificate at the same address: a new one made by the receiver, as if the host were someone else's.
    await receiver.program.kill();
    await rm(join(dataDir, 'tls'), { recursive: true, force: true });
    receiver = await receiver.restart();
    const op = await cp.finished(token, await backUp(envId), 120_000);
    assert.equal(op.status, 'failed');
    assert.match(op.error ?? '', /not the pinned .*: nothing was sent/);
    assert.deepEqual(await filesUnder(join(dataDir, 'uploads')), [], 'nothing arrived');
    const check = await cp.request<ApiError>('POST', `/destinations/${destinationId}/check`, token);
    assert.equal(check.status, 422);
    assert.equal(check.body.error.code, 'certificate_mismatch');
    assert.equal(check.body.error.field, 'fingerprint');
  });

  it('fails a backup cleanly when the receiver’s disk is full, earlier snapshots intact', async (t) => {
    const small = join(stack.runDir, uniqueName('receiver-small'));
    await mkdir(small, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', small]);
    } catch {
      t.skip('this machine cannot mount a tmpfs');
      return;
    }
    const full = await startReceiver(small, netns);
    try {
      const created = await addReceiver('small', full);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const envId = await cp.deployWebEnvironment(token, a.id);
      const volume = join(a.root, 'volumes', envId, 'webdata');
      await writeFile(join(volume, 'small.txt'), 'fits');
      const first = await cp.finished(token, await backUp(envId, created.body.destination.id), 120_000);
      assert.equal(first.status, 'succeeded', JSON.stringify(first));
      const kept = Object.fromEntries(
        await Promise.all(
          (await objectsOn(small))
            .filter((n) => /\/(data|manifest)/.test(n))
            .map(async (n) => [n, sha256(await readFile(join(small, 'objects', n)))] as const),
        ),
      );
      await writeFile(join(volume, 'big.bin'), randomBytes(40 * 1024 * 1024));
      const second = await cp.finished(token, await backUp(envId, created.body.destination.id), 120_000);
      assert.equal(second.status, 'failed');
      assert.match(second.error ?? '', /disk_full/);
      const after = Object.fromEntries(
        await Promise.all(
          (await objectsOn(small))
            .filter((n) => /\/(data|manifest)/.test(n))
            .map(async (n) => [n, sha256(await readFile(join(small, 'objects', n)))] as const),
        ),
      );
      assert.deepEqual(after, kept, 'the earlier snapshot is there, byte for byte, and nothing else');
      assert.deepEqual(await filesUnder(join(small, 'uploads')), [], 'no parts left');
      const snapshots = await cp.request<{ snapshots: unknown[] }>(
        'GET',
        `/environments/${envId}/snapshots`,
        token,
      );
      assert.equal(snapshots.body.snapshots.length, 1, 'only the complete snapshot is listed');
    } finally {
      await full.program.kill();
      execFileSync('umount', ['-l', small]);
      await rm(small, { recursive: true, force: true });
    }
  });
});
