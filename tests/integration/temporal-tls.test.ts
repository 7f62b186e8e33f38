import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../../common/config.ts';
import { temporalConfig, temporalTarget } from '../../common/temporal-config.ts';
import { connectClient, connectWorker } from '../../common/temporal-connection.ts';
import { missedBackupsScheduleId } from '../../worker/missed-backups-watch.ts';
import { runProgram, type ProgramRun } from '../helpers/processes.ts';
import { createTestDatabase, freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { makeTestPki, type TestPki } from '../helpers/test-pki.ts';
import { startTlsTemporal, type TlsTemporal } from '../helpers/tls-temporal.ts';

/**
 * The control plane against a Temporal whose frontend takes only mTLS and whose authorizer wants an
 * API key: a real Temporal server, since the dev server has neither. What a production cluster or
 * Temporal Cloud asks of it.
 */
// The plain-text dev server by name: Node 26 sends no IP address as a TLS server name (a client set
// for TLS by address stops earlier, with that said: tests/unit/temporal-connect-errors.test.ts).
const devServerByName = stack.temporalAddress.replace(/^127\.0\.0\.1:/, 'localhost:');

describe('Temporal over TLS', () => {
  const VAULT_MASTER_KEY = randomBytes(32).toString('base64');
  let pki: TestPki;
  let temporal: TlsTemporal;
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let programs: ProgramRun[] = [];
  const target = (env: Record<string, string>) =>
    temporalTarget(loadConfig(temporalConfig, { TEMPORAL_NAMESPACE: stack.namespace, ...env }));

  before(async () => {
    const dir = join(stack.runDir, uniqueName('temporal-tls'));
    await mkdir(dir, { recursive: true });
    pki = makeTestPki('temporal.test', dir);
    temporal = await startTlsTemporal(pki, dir);
    testDb = await createTestDatabase();
  });

  after(async () => {
    await Promise.all(programs.map((p) => p.kill()));
    await temporal?.stop();
    await testDb?.drop();
  });

  it('the API and the control-plane worker connect with a client certificate and an API key, and the worker runs workflows over them', async () => {
    const apiPort = await freePort();
    const env = {
      ...temporal.clientEnv,
      DATABASE_URL: testDb.url,
      VAULT_MASTER_KEY,
      STRACKT_CONTROL_TASK_QUEUE: uniqueName('control'),
      API_PORT: String(apiPort),
    };
    const api = runProgram('api/main.ts', env);
    const worker = runProgram('worker/control-plane.main.ts', env);
    programs = [api, worker];
    const withOutput = (err: Error): never => {
      throw new Error(`${err.message}\napi: ${api.output()}\nworker: ${worker.output()}`);
    };
    await waitFor(
      'the API',
      async () => (await fetch(`http://127.0.0.1:${apiPort}/openapi.json`).catch(() => undefined))?.ok,
    ).catch(withOutput);
    await waitFor('the worker to poll', async () => worker.output().includes('polling')).catch(withOutput);

    // The worker made its schedule through its client; a run of it is a workflow its native connection polls for.
    const client: Client = await connectClient(target(temporal.clientEnv));
    try {
      await client.schedule.getHandle(missedBackupsScheduleId).trigger();
      await waitFor(
        'the triggered watchMissedBackups run to complete',
        async () => {
          for await (const run of client.workflow.list({ query: `WorkflowType = 'watchMissedBackups'` }))
            if (run.status.name === 'COMPLETED') return true;
          return false;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      await client.connection.close();
    }
  });

  it('a key the server refuses is named, not the address, and not shown', async () => {
    const { TEMPORAL_API_KEY: _key, ...certificateOnly } = temporal.clientEnv;
    const otherNamespace = temporal.apiKey(['elsewhere:admin']);
    const refused = (credentials: string) =>
      new RegExp(
        `Temporal at ${temporal.address.replaceAll('.', '\\.')} refused this client for namespace "strackt" \\(${credentials}\\): 7 PERMISSION_DENIED`,
      );
    await assert.rejects(
      connectClient(target(certificateOnly)),
      refused('a client certificate or TEMPORAL_API_KEY'),
    );
    await assert.rejects(
      connectWorker(target({ ...certificateOnly, TEMPORAL_API_KEY: otherNamespace })),
      refused('TEMPORAL_API_KEY'),
    );
    const run = runProgram('api/main.ts', {
      ...certificateOnly,
      TEMPORAL_API_KEY: otherNamespace,
      DATABASE_URL: testDb.url,
      VAULT_MASTER_KEY,
    });
    assert.equal(await run.exited, 1, run.output());
    assert.match(run.output(), /cannot start: Temporal at .* refused this client .*\(TEMPORAL_API_KEY\)/);
    assert.ok(!run.output().includes(otherNamespace.split('.')[2]!), 'the key stays out of the message');
  });

  it('says at once, and why, when the certificates or the server do not fit', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { ...temporal.clientEnv, TEMPORAL_TLS_CLIENT_CERT_PATH: '', TEMPORAL_TLS_CLIENT_KEY_PATH: '' },
        /TLS handshake failed: .*certificate required \(the server wants a client certificate/,
      ],
      [
        { ...temporal.clientEnv, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCa },
        /TLS handshake failed: unable to verify the first certificate \(TEMPORAL_TLS_SERVER_CA_CERT_PATH/,
      ],
      [
        { ...temporal.clientEnv, TEMPORAL_TLS_SERVER_NAME: 'other.test' },
        /TLS handshake failed: Hostname\/IP does not match .*other\.test/,
      ],
      [
        { TEMPORAL_ADDRESS: temporal.address },
        /Failed to connect \(does the server expect TLS\? see TEMPORAL_TLS\)/,
      ],
      [
        { TEMPORAL_ADDRESS: devServerByName, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca },
        /TLS handshake failed: wrong version number \(is the server plain text\?\)/,
      ],
    ];
    for (const [env, cause] of cases) {
      for (const connect of [connectClient, connectWorker]) {
        const started = Date.now();
        await assert.rejects(connect(target(env)), (err: Error) => {
          const address = env.TEMPORAL_ADDRESS!.replaceAll('.', '\\.');
          assert.match(
            err.message,
            new RegExp(`^cannot reach Temporal at ${address} \\(TEMPORAL_ADDRESS\\): `),
          );
          assert.match(err.message, cause);
          return true;
        });
        // Waiting for the channel to be ready would have taken the whole 5 s connect timeout.
        assert.ok(Date.now() - started < 3000, `${connect.name} took ${Date.now() - started} ms`);
      }
    }
  });

  it('a CA set for the plain-text dev server stops the API and the worker with the TLS error and the address', async () => {
    for (const program of ['api/main.ts', 'worker/control-plane.main.ts']) {
      const run = runProgram(program, {
        DATABASE_URL: testDb.url,
        VAULT_MASTER_KEY,
        TEMPORAL_ADDRESS: devServerByName,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
      });
      assert.equal(await run.exited, 1, run.output());
      const address = devServerByName.replaceAll('.', '\\.');
      assert.match(
        run.output(),
        new RegExp(
          `cannot start: cannot reach Temporal at ${address} \\(TEMPORAL_ADDRESS\\): ` +
            'TLS handshake failed: wrong version number \\(is the server plain text\\?\\)',
        ),
      );
    }
  });
});
