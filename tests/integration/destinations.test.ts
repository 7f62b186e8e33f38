import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createApp } from '../../api/app.ts';
import { createLogger } from '../../common/log.ts';
import { createS3Client } from '../../common/s3-client.ts';
import { openDestination } from '../../db/destinations.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { createTaskSignals, type TaskSignals } from '../../db/agent-task-signals.ts';
import { Vault } from '../../db/vault.ts';
import { destinationStores } from '../../db/destination-stores.ts';
import { notingAnswers } from '../helpers/api-answers.ts';
import { connectTestClient, createTestDatabase, freePort, stack, uniqueName } from '../helpers/stack.ts';

const run = promisify(execFile);

interface Destination {
  id: string;
  name: string;
  endpoint: string | null;
  region: string;
  bucket: string;
  prefix: string;
  pathStyle: boolean;
  accessKeyId: string;
  createdAt: string;
  updatedAt: string;
  lastCheckedAt: string | null;
}
interface Created {
  destination: Destination;
  teamKey: { publicKey: string; fingerprint: string; secretKey: string; notice: string } | null;
}
interface ErrorBody {
  error: { code: string; message: string; field?: string };
}
const errorOf = (res: { body: unknown }) => (res.body as ErrorBody).error;

/** Serves a listener on a free loopback port and gives back its address. */
async function listen(
  server: NetServer,
  protocol: 'http' | 'https',
): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `${protocol}://127.0.0.1:${port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const s3Error = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>denied here</Message></Error>`;

/**
 * A stand-in for a provider whose policy denies one action, or that returns other bytes than it stored.
 * versitygw without an IAM service has only its root account, which is allowed everything.
 */
function fakeS3(behaviour: { deny?: 'PUT' | 'GET' | 'DELETE'; corrupt?: boolean }): RequestListener {
  const objects = new Map<string, Buffer>();
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url!.split('?')[0]!;
      if (req.method === behaviour.deny) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end(s3Error('AccessDenied'));
      } else if (req.method === 'PUT') {
        objects.set(path, Buffer.concat(chunks));
        res.writeHead(200, { etag: '"0"' }).end();
      } else if (req.method === 'GET' && objects.has(path)) {
        const body = behaviour.corrupt ? Buffer.from('not what you wrote') : objects.get(path)!;
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } else if (req.method === 'DELETE') {
        objects.delete(path);
        res.writeHead(204).end();
      } else {
        res.writeHead(404, { 'content-type': 'application/xml' }).end(s3Error('NoSuchKey'));
      }
    });
  };
}

describe('destinations', () => {
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let temporal: Client;
  let taskSignals: TaskSignals;
  let vault: Vault;
  let app: ReturnType<typeof createApp>;
  const admin = createS3Client({ ...stack.s3, region: 'us-east-1', forcePathStyle: true });
  const bucket = uniqueName('dst');
  const a = { teamId: '', token: '' };
  const b = { token: '' };
  const secret = stack.s3.secretAccessKey;
  const openBucket = async (id: string) => {
    const access = await openDestination(testDb.db, vault, a.teamId, id);
    assert.equal(access.kind, 's3');
    return access as Extract<typeof access, { kind: 's3' }>;
  };
  const good = {
    endpoint: stack.s3.endpoint,
    bucket,
    accessKeyId: stack.s3.accessKeyId,
    secretAccessKey: secret,
  };
  let first: Created;

  async function call<T = Destination>(method: string, path: string, token: string, body?: unknown) {
    const res = await app.request(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      body: (text ? JSON.parse(text) : undefined) as T,
    };
  }

  async function keysIn(name: string): Promise<string[]> {
    const listed = await admin.send(new ListObjectsV2Command({ Bucket: name }));
    return (listed.Contents ?? []).map((o) => o.Key!).sort();
  }

  /**
   * A failed check: the right status and code, the destination's field it names as the fix (if any),
   * a message naming what it should, and no secret in it.
   */
  function assertRefused(
    res: { status: number; body: unknown; text: string },
    code: string,
    mentions = '',
    field?: string,
  ) {
    assert.equal(res.status, 422, res.text);
    const error = errorOf(res);
    assert.equal(error.code, code, res.text);
    assert.equal(error.field, field, res.text);
    assert.ok(error.message.includes(mentions), `"${error.message}" names ${mentions}`);
    assert.ok(!res.text.includes(secret), 'the secret key stays out of the answer');
  }

  before(async () => {
    assert.ok(stack.s3.endpoint, 'STRACKT_TEST_S3_ENDPOINT is set (deploy/test.sh starts versitygw)');
    testDb = await createTestDatabase();
    temporal = await connectTestClient();
    vault = new Vault(randomBytes(32));
    app = notingAnswers(
      createApp({
        db: testDb.db,
        vault,
        storeOf: destinationStores(testDb.db, vault),
        temporal,
        controlTaskQueue: uniqueName('control'),
        agentStaleAfterMs: 20_000,
        taskSignals: (taskSignals = createTaskSignals(testDb.url)),
        log: createLogger('api', { level: 'warn' }),
      }),
    );
    const teamA = await createTeam(testDb.db, 'a');
    Object.assign(a, { teamId: teamA.team.id, token: teamA.token });
    b.token = (await createTeam(testDb.db, 'b')).token;
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    await admin.send(new PutObjectCommand({ Bucket: bucket, Key: 'keep.txt', Body: 'the customer’s own' }));

    const res = await call<Created>('POST', '/destinations', a.token, {
      name: 'main',
      ...good,
      prefix: 'strackt/',
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    first = res.body;
  });

  after(async () => {
    for (const key of await keysIn(bucket).catch(() => []))
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    await admin.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    admin.destroy();
    await temporal?.connection.close();
    await taskSignals?.close();
    await testDb?.drop();
  });

  it('creates a checked destination and gives the team its key with the first one only', async () => {
    const d = first.destination;
    assert.match(d.id, /^dst_[a-z2-7]{16}$/);
    assert.deepEqual(
      { ...d, id: '', createdAt: '', updatedAt: '', lastCheckedAt: '' },
      {
        id: '',
        name: 'main',
        kind: 's3',
        endpoint: stack.s3.endpoint,
        region: 'us-east-1',
        bucket,
        prefix: 'strackt',
        pathStyle: true,
        accessKeyId: `…${stack.s3.accessKeyId.slice(-Math.min(4, Math.floor(stack.s3.accessKeyId.length / 3)))}`,
        receiver: null,
        createdAt: '',
        updatedAt: '',
        lastCheckedAt: '',
      },
    );
    assert.ok(!d.accessKeyId.includes(stack.s3.accessKeyId));
    assert.ok(Date.parse(d.lastCheckedAt!) >= Date.parse(d.createdAt) - 1000);

    const key = first.teamKey!;
    assert.match(key.secretKey, /^STK1-[A-Z2-7]{4}(-[A-Z2-7]{1,4})+$/);
    assert.match(key.notice, /only this once/);
    const team = await call<{ key: { fingerprint: string } }>('GET', '/team', a.token);
    assert.equal(team.body.key.fingerprint, key.fingerprint);
    assert.equal((await call('POST', '/team/key', a.token)).status, 409, 'the key exists now');

    const second = await call<Created>('POST', '/destinations', a.token, { name: 'top', ...good });
    assert.equal(second.status, 201, second.text);
    assert.equal(second.body.teamKey, null);
    assert.equal(second.body.destination.prefix, '');
    assert.ok(!second.text.includes(key.secretKey));
    assert.equal((await call('DELETE', `/destinations/${second.body.destination.id}`, a.token)).status, 204);
  });

  it('leaves no probe object behind, and nothing else of the bucket touched', async () => {
    assert.deepEqual(await keysIn(bucket), ['keep.txt']);
    const checked = await call('POST', `/destinations/${first.destination.id}/check`, a.token);
    assert.equal(checked.status, 200, checked.text);
    assert.ok(Date.parse(checked.body.lastCheckedAt!) > Date.parse(first.destination.lastCheckedAt!));
    assert.deepEqual(await keysIn(bucket), ['keep.txt']);
  });

  it('never shows the secret key again: not in any answer, not in a pg_dump', async () => {
    const answers = [
      await call('GET', '/destinations', a.token),
      await call('GET', `/destinations/${first.destination.id}`, a.token),
      await call('PATCH', `/destinations/${first.destination.id}`, a.token, { name: 'main' }),
      await call('POST', `/destinations/${first.destination.id}/check`, a.token),
    ];
    for (const res of answers) {
      assert.equal(res.status, 200, res.text);
      assert.ok(!res.text.includes(secret), res.text);
      assert.ok(!res.text.includes(stack.s3.accessKeyId), 'the access key id only masked');
    }
    const { stdout: dump } = await run('pg_dump', ['--data-only', `--dbname=${testDb.url}`], {
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.ok(dump.includes(first.destination.id) && dump.includes(bucket), 'the dump holds the destination');
    assert.ok(dump.includes('destination-secret-key'), 'and its vault row');
    for (const form of [
      secret,
      Buffer.from(secret).toString('hex'),
      Buffer.from(secret).toString('base64').replace(/=+$/, ''),
    ])
      assert.ok(!dump.includes(form), 'the dump holds the secret key');
    // The vault still gives it back to the control plane, which is what it is kept for.
    const opened = await openBucket(first.destination.id);
    assert.equal(opened.location.secretAccessKey, secret);
  });

  it('refuses a wrong secret key with bad_credentials and saves nothing', async () => {
    const wrong = `wrong-${randomBytes(12).toString('hex')}`;
    const res = await call('POST', '/destinations', a.token, {
      name: 'bad',
      ...good,
      secretAccessKey: wrong,
    });
    assertRefused(res, 'bad_credentials', '127.0.0.1', 'secretAccessKey');
    assert.ok(!res.text.includes(wrong));
    const list = await call<{ destinations: Destination[] }>('GET', '/destinations', a.token);
    assert.deepEqual(
      list.body.destinations.map((d) => d.name),
      ['main'],
    );
  });

  it('refuses an unknown bucket with no_such_bucket, naming it', async () => {
    const res = await call('POST', '/destinations', a.token, {
      name: 'nob',
      ...good,
      bucket: 'no-such-bucket-here',
    });
    assertRefused(res, 'no_such_bucket', '"no-such-bucket-here"', 'bucket');
  });

  it('refuses an endpoint nothing listens on with endpoint_unreachable, naming host:port', async () => {
    const port = await freePort();
    const started = Date.now();
    const res = await call('POST', '/destinations', a.token, {
      name: 'away',
      ...good,
      endpoint: `http://127.0.0.1:${port}`,
    });
    assertRefused(res, 'endpoint_unreachable', `127.0.0.1:${port}`, 'endpoint');
    assert.match(errorOf(res).message, /ECONNREFUSED/);
    assert.ok(Date.now() - started < 10_000, 'no retries with backoff');
  });

  it("gives up on an endpoint that never answers within the check's time limit", async () => {
    // Reads what is sent (so it sees the client hang up) and never answers.
    const silent = createNetServer((socket) => socket.resume());
    const server = await listen(silent, 'http');
    try {
      const started = Date.now();
      const res = await call('POST', '/destinations', a.token, {
        name: 'mute',
        ...good,
        endpoint: server.url,
      });
      assertRefused(res, 'endpoint_unreachable', new URL(server.url).host, 'endpoint');
      assert.ok(Date.now() - started < 11_000, `answered after ${Date.now() - started} ms`);
    } finally {
      await server.close();
    }
  });

  it('refuses an endpoint whose TLS does not verify with tls_failure', async () => {
    const dir = await mkdtemp(join(stack.runDir, 'tls-'));
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-keyout',
      join(dir, 'k'),
      '-out',
      join(dir, 'c'),
    ]);
    const server = await listen(
      createHttpsServer(
        { key: await readFile(join(dir, 'k')), cert: await readFile(join(dir, 'c')) },
        (_q, s) => s.end('never reached'),
      ),
      'https',
    );
    try {
      const port = new URL(server.url).port;
      const res = await call('POST', '/destinations', a.token, {
        name: 'tls',
        ...good,
        endpoint: server.url,
      });
      assertRefused(res, 'tls_failure', `127.0.0.1:${port}`, 'endpoint');
      assert.match(errorOf(res).message, /self-signed/);
    } finally {
      await server.close();
    }
    // https:// to a server that speaks plain HTTP fails in the handshake as well.
    const plain = await call('POST', '/destinations', a.token, {
      name: 'tls',
      ...good,
      endpoint: stack.s3.endpoint.replace('http://', 'https://'),
    });
    assertRefused(plain, 'tls_failure', new URL(stack.s3.endpoint).host, 'endpoint');
  });

  it('names the step a provider denies with access_denied, and a bad read-back with readback_mismatch', async () => {
    const cases = [
      // A denied step names no field: the fix is a permission at the provider, not in the form.
      { behaviour: { deny: 'PUT' as const }, code: 'access_denied', says: /write objects.*s3:PutObject/ },
      { behaviour: { deny: 'GET' as const }, code: 'access_denied', says: /read objects.*s3:GetObject/ },
      { behaviour: { deny: 'DELETE' as const }, code: 'access_denied', says: /delete objects.*left behind/ },
      {
        behaviour: { corrupt: true },
        code: 'readback_mismatch',
        says: /64 bytes written, 18 read/,
        field: 'endpoint',
      },
    ];
    for (const { behaviour, code, says, field } of cases as { field?: string }[] & typeof cases) {
      const server = await listen(createHttpServer(fakeS3(behaviour)), 'http');
      try {
        const res = await call('POST', '/destinations', a.token, {
          name: 'fake',
          ...good,
          endpoint: server.url,
        });
        assertRefused(res, code, `"${bucket}"`, field);
        assert.match(errorOf(res).message, says);
      } finally {
        await server.close();
      }
    }
  });

  it('names the field of invalid input', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ bucket: 'Bad_Bucket' }, 'bucket'],
      [{ bucket: 'ab' }, 'bucket'],
      [{ bucket: '192.168.1.1' }, 'bucket'],
      [{ prefix: '/abs' }, 'prefix'],
      [{ prefix: 'a/../b' }, 'prefix'],
      [{ endpoint: 'ftp://example.com' }, 'endpoint'],
      [{ endpoint: 'http://user:hunter2@example.com' }, 'endpoint'],
      [{ endpoint: 'not a url' }, 'endpoint'],
      [{ name: 'Bad Name' }, 'name'],
      [{ region: 'us east' }, 'region'],
      [{ pathStyle: 'yes' }, 'pathStyle'],
      [{ accessKeyId: '' }, 'accessKeyId'],
      [{ secretAccessKey: undefined }, 'secretAccessKey'],
      [{ extra: 1 }, 'extra'],
    ];
    for (const [change, field] of cases) {
      const res = await call('POST', '/destinations', a.token, { name: 'v', ...good, ...change });
      assert.equal(res.status, 422, `${JSON.stringify(change)}: ${res.text}`);
      const error = errorOf(res);
      assert.equal(error.code, 'validation_failed');
      assert.equal(error.field, field, res.text);
      assert.ok(!res.text.includes('hunter2') && !res.text.includes(secret));
    }
    const patch = await call('PATCH', `/destinations/${first.destination.id}`, a.token, {
      bucket: 'Bad_Bucket',
    });
    assert.equal(errorOf(patch).field, 'bucket');
    const taken = await call('POST', '/destinations', a.token, { name: 'main', ...good });
    assert.equal(taken.status, 409);
    assert.equal(errorOf(taken).code, 'name_taken');
  });

  it("keeps a team's destination from every other team", async () => {
    const id = first.destination.id;
    const list = await call('GET', '/destinations', b.token);
    assert.equal(list.status, 200);
    assert.ok(!list.text.includes(id) && !list.text.includes(bucket));
    for (const [method, path, body] of [
      ['GET', `/destinations/${id}`],
      ['PATCH', `/destinations/${id}`, { name: 'mine' }],
      ['PATCH', `/destinations/${id}`, { bucket: 'other-bucket' }],
      ['POST', `/destinations/${id}/check`],
      ['DELETE', `/destinations/${id}`],
    ] as const) {
      const res = await call(method, path, b.token, body);
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(errorOf(res).code, 'destination_not_found');
      assert.ok(!res.text.includes(bucket));
    }
    const still = await call('GET', `/destinations/${id}`, a.token);
    assert.equal(still.body.name, 'main');
  });

  it('refuses a patch with a wrong new secret key and keeps the destination working as it was', async () => {
    const id = first.destination.id;
    const before = (await call('GET', `/destinations/${id}`, a.token)).body;
    const refused = await call('PATCH', `/destinations/${id}`, a.token, {
      name: 'renamed',
      secretAccessKey: 'not-the-secret',
    });
    assertRefused(refused, 'bad_credentials', '', 'secretAccessKey');
    assert.deepEqual((await call('GET', `/destinations/${id}`, a.token)).body, before);
    assert.equal((await call('POST', `/destinations/${id}/check`, a.token)).status, 200, 'still works');
    assert.equal((await openBucket(id)).location.secretAccessKey, secret);

    // A good change is checked, saved, and its replaced secret leaves the vault.
    const moved = await call('PATCH', `/destinations/${id}`, a.token, {
      prefix: 'elsewhere',
      secretAccessKey: secret,
    });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.prefix, 'elsewhere');
    assert.equal(moved.body.name, 'main');
    const sealed = await testDb.db
      .selectFrom('vault_secrets')
      .select('id')
      .where('team_id', '=', a.teamId)
      .where('kind', '=', 'destination-secret-key')
      .execute();
    assert.equal(sealed.length, 1, 'one sealed secret per destination, none left over');
    assert.deepEqual(await keysIn(bucket), ['keep.txt']);
  });

  it('keeps an opened store while its destination is unchanged, and opens it anew once patched', async () => {
    const storeOf = destinationStores(testDb.db, vault);
    const id = first.destination.id;
    const kept = await storeOf(a.teamId, id);
    assert.equal(await storeOf(a.teamId, id), kept, 'the same store (and its client, its sockets) again');
    await assert.rejects(storeOf((await createTeam(testDb.db, 'other')).team.id, id), /not found/);
    const patched = await call('PATCH', `/destinations/${id}`, a.token, { prefix: 'moved' });
    assert.equal(patched.status, 200, patched.text);
    const reopened = await storeOf(a.teamId, id);
    assert.notEqual(reopened, kept);
    assert.equal(reopened.prefix, patched.body.prefix);
  });

  it('deletes a destination and its sealed secret, leaving the bucket alone', async () => {
    const made = await call<Created>('POST', '/destinations', a.token, { name: 'gone', ...good });
    assert.equal(made.status, 201, made.text);
    const id = made.body.destination.id;
    assert.equal((await call('DELETE', `/destinations/${id}`, a.token)).status, 204);
    assert.equal((await call('GET', `/destinations/${id}`, a.token)).status, 404);
    assert.equal((await call('DELETE', `/destinations/${id}`, a.token)).status, 404);
    const sealed = await testDb.db
      .selectFrom('vault_secrets')
      .select('id')
      .where('kind', '=', 'destination-secret-key')
      .execute();
    assert.equal(sealed.length, 1, "only the remaining destination's secret is sealed");
    assert.deepEqual(await keysIn(bucket), ['keep.txt']);
  });

  it('goes away with its team, sealed secret included', async () => {
    const team = await createTeam(testDb.db, 'leaving');
    const made = await call<Created>('POST', '/destinations', team.token, { name: 'theirs', ...good });
    assert.equal(made.status, 201, made.text);
    assert.ok(made.body.teamKey, 'a team of its own, so a key of its own');
    await testDb.db.deleteFrom('teams').where('id', '=', team.team.id).execute();
    for (const table of ['destinations', 'vault_secrets'] as const) {
      const left = await testDb.db
        .selectFrom(table)
        .select('id')
        .where('team_id', '=', team.team.id)
        .execute();
      assert.deepEqual(left, [], table);
    }
  });
});
