import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nameSchema, servicesSchema } from '../../common/environment-spec.ts';
import { volumeVariable } from '../../common/names.ts';

describe('environment spec', () => {
  it('accepts a minimal service and fills defaults', () => {
    const [svc] = servicesSchema.parse([{ name: 'web', command: 'node server.js' }]);
    assert.deepEqual(svc, {
      name: 'web',
      command: 'node server.js',
      env: {},
      volumes: [],
      healthTimeoutSeconds: 60,
      stopSignal: 'SIGTERM',
      stopTimeoutSeconds: 10,
    });
  });

  it('refuses names that could escape a path or break a variable', () => {
    for (const bad of ['', 'A', '../x', 'a/b', '-a', 'a-', 'a'.repeat(64), 'a b']) {
      assert.equal(nameSchema.safeParse(bad).success, false, bad);
    }
    assert.equal(nameSchema.safeParse('db-1').success, true);
  });

  it('refuses unknown fields, duplicate services and bad variable names, naming the path', () => {
    const unknown = servicesSchema.safeParse([{ name: 'web', command: 'x', restart: 'always' }]);
    assert.equal(unknown.success, false);
    assert.equal(unknown.error!.issues[0]!.code, 'unrecognized_keys');

    const dup = servicesSchema.safeParse([
      { name: 'web', command: 'x' },
      { name: 'web', command: 'y' },
    ]);
    assert.deepEqual(dup.error!.issues[0]!.path, [1, 'name']);

    const env = servicesSchema.safeParse([{ name: 'web', command: 'x', env: { '1BAD': 'v' } }]);
    assert.deepEqual(env.error!.issues[0]!.path.slice(0, 2), [0, 'env']);

    const relative = servicesSchema.safeParse([{ name: 'web', command: 'x', workingDir: 'srv' }]);
    assert.deepEqual(relative.error!.issues[0]!.path, [0, 'workingDir']);
  });

  it('checks health checks by type', () => {
    assert.equal(
      servicesSchema.safeParse([{ name: 'a', command: 'x', healthCheck: { type: 'http', port: 80 } }])
        .success,
      true,
    );
    assert.equal(
      servicesSchema.safeParse([{ name: 'a', command: 'x', healthCheck: { type: 'tcp', port: 0 } }]).success,
      false,
    );
    assert.equal(
      servicesSchema.safeParse([{ name: 'a', command: 'x', healthCheck: { type: 'ping' } }]).success,
      false,
    );
  });

  it('maps volume names to variables', () => {
    assert.equal(volumeVariable('pg-data'), 'STRACKT_VOLUME_PG_DATA');
  });
});
