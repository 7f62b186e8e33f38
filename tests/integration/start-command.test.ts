import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { it } from 'node:test';
import { createTestDatabase, freePorts, repoRoot, stack, uniqueName, waitFor } from '../helpers/stack.ts';

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** The README's start command, as a newcomer runs it: up, a curl with the printed token, Ctrl-C. */
it('npm start brings the stack up with the local server connected, and Ctrl-C stops all of it', async () => {
  const testDb = await createTestDatabase();
  const data = join(stack.runDir, uniqueName('start'));
  const [api, temporal, ui, s3] = await freePorts(4);
  const ports = { api: api!, temporal: temporal!, ui: ui!, s3: s3! };
  const start = spawn('bash', [join(repoRoot, 'deploy/start.sh')], {
    env: {
      ...process.env,
      STRACKT_DATA_DIR: data,
      DATABASE_URL: testDb.url,
      API_PORT: String(ports.api),
      STRACKT_TEMPORAL_PORT: String(ports.temporal),
      STRACKT_TEMPORAL_UI_PORT: String(ports.ui),
      STRACKT_S3_PORT: String(ports.s3),
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  start.stdout.on('data', (d: Buffer) => (out += d));
  start.stderr.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
  try {
    await waitFor(
      'the start banner',
      async () =>
        out.includes('strackt is running.') || (start.exitCode !== null && Promise.reject(new Error(out))),
      {
        timeoutMs: 180_000,
      },
    );
    const token = (await readFile(join(data, 'admin.token'), 'utf8')).trim();
    assert.ok(out.includes(token), 'the banner prints the admin token');
    assert.ok(out.includes(`http://127.0.0.1:${ports.ui}`), 'and the Temporal UI URL');

    const servers = await waitFor('the local server to show as connected', async () => {
      const res = await fetch(`http://127.0.0.1:${ports.api}/servers`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as { servers: { name: string; connected: boolean }[] };
      return body.servers.some((s) => s.connected) ? body.servers : undefined;
    });
    assert.deepEqual(
      servers.map((s) => [s.name, s.connected]),
      [['local', true]],
    );
    assert.equal((await fetch(`http://127.0.0.1:${ports.ui}/`)).status, 200, 'the Temporal Web UI answers');

    const keyFile = join(data, 'vault-master.key');
    assert.equal(
      (await stat(keyFile)).mode & 0o777,
      0o600,
      'the vault master key is readable by its owner only',
    );
    assert.equal(Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64').length, 32);
    const key = await fetch(`http://127.0.0.1:${ports.api}/team/key`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(key.status, 201, 'the API seals a team key with it');

    process.kill(-start.pid!, 'SIGINT');
    assert.equal(await exited, 0, out);
    for (const [name, port] of Object.entries(ports))
      assert.equal(await listening(port), false, `${name} on ${port} stopped`);
  } finally {
    if (start.exitCode === null) process.kill(-start.pid!, 'SIGKILL');
    await testDb.drop();
  }
});
