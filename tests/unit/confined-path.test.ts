import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaptureJournal } from '../../agent/capture-journal.ts';
import { confined } from '../../agent/confined-path.ts';
import { removeSnapshots } from '../../agent/fs-snapshots.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import {
  discardRestore,
  fetchAndUnpack,
  finishRestore,
  preflightRestore,
  swapBack,
  swapIn,
  type RestoreDeps,
} from '../../agent/snapshot-restore.ts';
import type { RestoreRef } from '../../agent/stored-snapshot.ts';
import { TaskFailure } from '../../agent/task-failure.ts';
import { createLogger } from '../../common/log.ts';

const refused = (err: unknown) =>
  err instanceof TaskFailure && err.type === 'PathEscapesDataRoot' && err.nonRetryable;

describe('confined paths', () => {
  it('joins plain names under the root', () => {
    assert.equal(
      confined('/data', 'volumes', 'env_abcdefghijklmnop', 'pgdata'),
      '/data/volumes/env_abcdefghijklmnop/pgdata',
    );
    // Dots inside a name are part of it, not a way up.
    assert.equal(confined('/data/', 'logs', '...log', '..hidden'), '/data/logs/...log/..hidden');
  });

  it('refuses any name that is not one plain path component', () => {
    for (const name of ['../../..', '..', '.', '', 'a/b', 'a/', '/etc', '/', 'a\0b', '\0']) {
      assert.throws(() => confined('/data', 'restores', name), refused, JSON.stringify(name));
      assert.throws(() => confined('/data', name, 'x'), refused, JSON.stringify(name));
    }
    // Values parsed from JSON need not be strings at all.
    assert.throws(() => confined('/data', undefined as unknown as string), refused);
    assert.throws(() => confined('/data'), refused, 'the root itself is not under the root');
  });
});

describe('host steps given ids that are not ids', () => {
  const env = 'env_abcdefghijklmnop';
  const op = 'op_abcdefghijklmnop';
  let tmp: string;
  let root: string;
  let runtime: ProcessRuntime;
  let deps: RestoreDeps;
  const tree = async () => (await readdir(tmp, { recursive: true })).sort();

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'confined-'));
    root = join(tmp, 'agent', 'data');
    runtime = new ProcessRuntime(root);
    await mkdir(join(root, 'restores', env, op, 'staging', 'pgdata'), { recursive: true });
    await mkdir(join(root, 'volumes', env, 'pgdata'), { recursive: true });
    // Where `<restores>/../../../<op>` lands: what discardRestore of environment ../../.. would delete.
    await mkdir(join(tmp, op), { recursive: true });
    await writeFile(join(tmp, op, 'sentinel'), 'keep me');
    await mkdir(join(tmp, 'elsewhere'));
    await writeFile(join(tmp, 'elsewhere', 'sentinel'), 'keep me');
    deps = {
      runtime,
      controlPlane: {
        restoreAccess: () => assert.fail('the control plane is asked nothing'),
        dedupKey: () => assert.fail('the control plane is asked nothing'),
        locateRestoreChunks: () => assert.fail('the control plane is asked nothing'),
        reportDamage: () => assert.fail('the control plane is asked nothing'),
        restorePackAccess: () => assert.fail('the control plane is asked nothing'),
      },
      agentKey: { publicKey: Buffer.alloc(32), secretKey: Buffer.alloc(32) },
      log: createLogger('agent', { level: 'silent' }),
    };
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  const badRefs: RestoreRef[] = [
    { environmentId: '../../..', operationId: op },
    { environmentId: env, operationId: '../../..' },
    { environmentId: env, operationId: '..' },
    { environmentId: '/', operationId: op },
    { environmentId: `${env}/../..`, operationId: op },
    { environmentId: env, operationId: `a\0b` },
  ];

  it('refuses every restore step and touches no file', async () => {
    const was = await tree();
    for (const ref of badRefs) {
      const steps = {
        discardRestore: () => discardRestore(runtime, ref),
        finishRestore: () => finishRestore(runtime, ref),
        swapIn: () => swapIn(runtime, ref),
        swapBack: () => swapBack(runtime, ref),
        preflightRestore: () => preflightRestore(deps, ref),
        fetchAndUnpack: () => fetchAndUnpack(deps, ref, () => undefined),
      };
      for (const [name, step] of Object.entries(steps))
        await assert.rejects(step, refused, `${name} ${JSON.stringify(ref)}`);
    }
    assert.deepEqual(await tree(), was);
  });

  it('refuses them in the runtime and the capture journal too', async () => {
    const was = await tree();
    for (const environmentId of ['../../..', '..', 'a/b', '']) {
      await assert.rejects(runtime.stop(environmentId), refused);
      await assert.rejects(runtime.status(environmentId), refused);
      await assert.rejects(runtime.thaw(environmentId), refused);
      assert.throws(() => runtime.volumesRoot(environmentId), refused);
      assert.throws(() => runtime.restoresRoot(environmentId), refused);
      assert.throws(() => runtime.fsSnapshotsRoot(environmentId), refused);
    }
    // The journal's file is `<id>.json`: only ids with a slash could lead anywhere else.
    for (const environmentId of ['../../../elsewhere/sentinel', 'a/b'])
      await assert.rejects(new CaptureJournal(runtime.capturesRoot()).settle(environmentId), refused);
    assert.throws(() => runtime.volumePath(env, '../../../elsewhere'), refused);
    // A journal's snapshot names are volume names: removing them never reaches out of the snapshots' folder.
    await assert.rejects(removeSnapshots(runtime.fsSnapshotsRoot(env), ['../../../elsewhere']), refused);
    assert.deepEqual(await tree(), was);
  });

  it('leaves valid ids alone', async () => {
    await discardRestore(runtime, { environmentId: env, operationId: op });
    assert.deepEqual(await readdir(join(root, 'restores', env)), []);
    assert.equal(runtime.volumePath(env, 'pgdata'), join(root, 'volumes', env, 'pgdata'));
  });
});
