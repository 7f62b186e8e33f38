import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { servicesSchema, type EnvironmentSpec } from '../../common/environment-spec.ts';
import { groupAlive } from '../../agent/process-groups.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { stack, waitFor } from '../helpers/stack.ts';

function spec(services: unknown[]): EnvironmentSpec {
  return {
    environmentId: 'env_runtimetest',
    teamId: 'team_x',
    name: 'rt',
    services: servicesSchema.parse(services),
    backupStrategy: 'freeze',
  };
}

async function pidFrom(path: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (text.trim()) return Number(text);
    await sleep(50);
  }
  throw new Error(`no pid in ${path}`);
}

describe('process runtime', () => {
  it('kills a whole process group that ignores the stop signal, after the grace period', async () => {
    const root = await mkdtemp(join(stack.runDir, 'rt-'));
    const runtime = new ProcessRuntime(root);
    // The service ignores SIGTERM and has a child of its own that would outlive a kill of the parent alone.
    await runtime.start(
      spec([
        {
          name: 'stubborn',
          command: `trap '' TERM; sh -c 'trap "" TERM; echo $$ > "$STRACKT_VOLUME_V/child"; while :; do sleep 1; done' & echo $$ > "$STRACKT_VOLUME_V/parent"; while :; do sleep 1; done`,
          volumes: ['v'],
          stopTimeoutSeconds: 1,
        },
      ]),
    );
    const parent = await pidFrom(join(runtime.volumePath('env_runtimetest', 'v'), 'parent'));
    const child = await pidFrom(join(runtime.volumePath('env_runtimetest', 'v'), 'child'));
    assert.ok(groupAlive(parent));
    const started = Date.now();
    await runtime.stop('env_runtimetest');
    const took = Date.now() - started;
    assert.ok(took >= 1000, `waited the grace period first (${took} ms)`);
    assert.equal(groupAlive(parent), false);
    // Gone, or a zombie its new parent (init) has not reaped yet: either way it no longer runs.
    const state = await readFile(`/proc/${child}/stat`, 'utf8').then(
      (stat) => stat.slice(stat.lastIndexOf(')') + 2)[0],
      () => 'gone',
    );
    assert.ok(['gone', 'Z'].includes(state!), `the child went with the group (state ${state})`);
  });

  it('stops services started before an agent restart (a new runtime over the same data root)', async () => {
    const root = await mkdtemp(join(stack.runDir, 'rt-'));
    await new ProcessRuntime(root).start(
      spec([
        { name: 'a', command: 'exec sleep 300' },
        { name: 'b', command: 'exec sleep 300' },
      ]),
    );
    const restarted = new ProcessRuntime(root);
    const before = await restarted.status('env_runtimetest');
    assert.deepEqual(
      before.map((s) => [s.service, s.running]),
      [
        ['a', true],
        ['b', true],
      ],
    );
    await restarted.stop('env_runtimetest');
    assert.ok(before.every((s) => !groupAlive(s.pid!)));
    assert.deepEqual(await restarted.status('env_runtimetest'), []);
  });

  it('does not signal an unrelated process group that reused a recorded pid', async () => {
    const root = await mkdtemp(join(stack.runDir, 'rt-'));
    const runtime = new ProcessRuntime(root);
    await runtime.start(spec([{ name: 'a', command: 'exec sleep 300' }]));
    const [ours] = await runtime.status('env_runtimetest');
    process.kill(-ours!.pid!, 'SIGKILL');
    // Start times count clock ticks (10 ms): a stranger started in the same tick would be indistinguishable.
    await sleep(50);
    // Another group leader now stands where the record points, as if the pid had been reused.
    const stranger = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    const file = join(root, 'run', 'env_runtimetest', 'a.json');
    const record = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...record, pgid: stranger.pid }));
    try {
      assert.deepEqual(
        (await runtime.status('env_runtimetest')).map((s) => s.running),
        [false],
      );
      await runtime.stop('env_runtimetest');
      assert.ok(groupAlive(stranger.pid!), 'the unrelated process was left alone');
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it('freezes every process of an environment, and a restarted agent thaws what a killed one left frozen', async () => {
    const root = await mkdtemp(join(stack.runDir, 'rt-'));
    const runtime = new ProcessRuntime(root);
    await runtime.start(
      spec([
        { name: 'a', command: 'exec sleep 300' },
        { name: 'b', command: 'exec sleep 300' },
      ]),
    );
    const pids = (await runtime.status('env_runtimetest')).map((s) => s.pid!);
    const state = async (pid: number) => (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]![0];
    const states = async (want: string) =>
      waitFor(`states ${want}`, async () => (await Promise.all(pids.map(state))).every((s) => s === want), {
        timeoutMs: 5000,
        intervalMs: 20,
      });
    await states('S');
    await runtime.freeze('env_runtimetest');
    await states('T');
    await new ProcessRuntime(root).thawAll(); // what agent.main.ts does first on start
    await states('S');
    await runtime.stop('env_runtimetest');
  });

  it('runs a health check as the service’s user, in its directory', async () => {
    const root = await mkdtemp(join(stack.runDir, 'rt-'));
    await chmod(root, 0o755); // the service's user must reach its directories
    const runtime = new ProcessRuntime(root);
    const nobody = spec([
      {
        name: 'unprivileged',
        command: 'exec sleep 300',
        user: 'nobody',
        healthCheck: { type: 'command', command: 'test "$(id -u)" = 65534 && test "$PWD" = "$HOME_DIR"' },
        env: { HOME_DIR: join(root, 'environments', 'env_runtimetest') },
        healthTimeoutSeconds: 3,
      },
    ]);
    await runtime.start(nobody);
    try {
      await runtime.waitHealthy(nobody, () => {});
    } finally {
      await runtime.stop('env_runtimetest');
    }
  });

  it('blanks the environment’s variable values in a failed hook’s output, which leaves the server', async () => {
    const root = await mkdtemp(join(stack.runDir, 'rt-'));
    const runtime = new ProcessRuntime(root);
    const secret = 'hunter2-s3cr3t-value';
    const env = spec([
      { name: 'db', command: 'exec sleep 300', env: { DB_PASSWORD: secret, PORT: '5432' } },
      { name: 'app', command: 'exec sleep 300', env: { API_TOKEN: 'tok_abcdef123456' } },
    ]);
    await assert.rejects(
      runtime.runHook(
        env,
        env.services[0]!,
        'echo "connecting with $DB_PASSWORD on $PORT"; echo tok_abcdef123456 >&2; exit 3',
        10,
      ),
      (err: Error) => {
        assert.equal((err as { type?: string }).type, 'HookFailed');
        assert.ok(!err.message.includes(secret) && !err.message.includes('tok_abcdef123456'), err.message);
        assert.match(err.message, /connecting with \[redacted\] on \[redacted\]/);
        return true;
      },
    );
  });
});
