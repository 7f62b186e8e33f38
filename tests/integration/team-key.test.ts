import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createEnvironment } from '../../db/environments.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { openTeamSecretKey } from '../../db/team-keys.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { Vault, VaultError } from '../../db/vault.ts';
import {
  fingerprintOf,
  parsePrintableSecretKey,
  printableSecretKey,
  publicKeyOf,
} from '../../format/team-key.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { runProgram } from '../helpers/processes.ts';

interface NewTeamKey {
  publicKey: string;
  fingerprint: string;
  secretKey: string;
  notice: string;
}

/** Every way the secret key could be written down, so a search for any of them is a search for it. */
function forms(secretKey: Buffer): string[] {
  const printable = printableSecretKey(secretKey);
  return [
    secretKey.toString('hex'),
    secretKey.toString('hex').toUpperCase(),
    secretKey.toString('base64'),
    secretKey.toString('base64url'),
    // Unpadded, and without the last character, which carries bits of no other byte.
    secretKey.toString('base64').slice(0, 42),
    printable,
    printable.replace(/-/g, ''),
    printable.toLowerCase(),
  ];
}

function assertNoSecret(text: string, secretKey: Buffer, where: string) {
  for (const form of forms(secretKey))
    assert.ok(!text.includes(form), `${where} holds the secret key (${form.length} chars)`);
}

function assertNoSecretBytes(bytes: Buffer, secretKey: Buffer, where: string) {
  assert.equal(bytes.indexOf(secretKey), -1, `${where} holds the raw secret key`);
  // Eight bytes in a row would already be a leak of part of it.
  for (let i = 0; i + 8 <= secretKey.length; i += 8)
    assert.equal(bytes.indexOf(secretKey.subarray(i, i + 8)), -1, `${where} holds part of the secret key`);
  for (const form of forms(secretKey))
    assert.equal(bytes.indexOf(Buffer.from(form)), -1, `${where} holds the secret key as text`);
}

describe('team key', () => {
  let cp: ControlPlane;
  const a = { teamId: '', token: '', serverId: '', agentToken: '', envId: '' };
  const b = { teamId: '', token: '' };
  let created: NewTeamKey;
  let secretKey: Buffer;

  before(async () => {
    cp = await startControlPlane();
    const teamA = await createTeam(cp.db, 'keyholders');
    Object.assign(a, { teamId: teamA.team.id, token: teamA.token });
    const teamB = await createTeam(cp.db, 'neighbours');
    Object.assign(b, { teamId: teamB.team.id, token: teamB.token });
    const server = await createServer(cp.db, a.teamId, 'box');
    Object.assign(a, { serverId: server.server.id, agentToken: server.agentToken });
    a.envId = (
      await createEnvironment(cp.db, a.teamId, {
        name: 'shop',
        serverId: a.serverId,
        services: [
          {
            name: 'web',
            command: 'true',
            env: {},
            volumes: [],
            healthTimeoutSeconds: 5,
            stopSignal: 'SIGTERM',
            stopTimeoutSeconds: 5,
          },
        ],
      })
    ).id;

    const res = await cp.app.request('/team/key', {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}` },
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    created = (await res.json()) as NewTeamKey;
    secretKey = parsePrintableSecretKey(created.secretKey);
  });

  after(async () => {
    await cp?.stop();
  });

  it('shows the secret key once, in its printable form, with a notice on keeping it', () => {
    assert.match(created.secretKey, /^STK1-[A-Z2-7]{4}(-[A-Z2-7]{1,4})+$/);
    assert.equal(publicKeyOf(secretKey).toString('hex'), created.publicKey);
    assert.equal(fingerprintOf(Buffer.from(created.publicKey, 'hex')), created.fingerprint);
    assert.match(created.fingerprint, /^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/);
    for (const point of [
      /only this once/,
      /offline/,
      /password manager/,
      /paper/,
      /vault/,
      /without strackt/,
    ])
      assert.match(created.notice, point);
  });

  it('refuses a second key with 409, without showing the first one again', async () => {
    const again = await cp.request<{ error: { code: string; message: string } }>(
      'POST',
      '/team/key',
      a.token,
    );
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'team_key_exists');
    assertNoSecret(JSON.stringify(again.body), secretKey, 'the 409 answer');
  });

  it('shows the public half in GET /team and the secret in no GET answer at all', async () => {
    const team = await cp.request<{
      key: { fingerprint: string; publicKey: string; createdAt: string } | null;
    }>('GET', '/team', a.token);
    assert.equal(team.status, 200);
    assert.equal(team.body.key?.fingerprint, created.fingerprint);
    assert.equal(team.body.key?.publicKey, created.publicKey);
    assert.ok(!Number.isNaN(Date.parse(team.body.key!.createdAt)));

    const doc = (await (await cp.app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const gets = Object.entries(doc.paths).filter(([, ops]) => 'get' in ops);
    assert.ok(gets.some(([path]) => path === '/team/tokens'));
    for (const [path] of gets) {
      const url = path.replace(
        '{id}',
        path.includes('environments')
          ? a.envId
          : path.startsWith('/servers')
            ? a.serverId
            : 'op_aaaaaaaaaaaaaaaa',
      );
      const token = path.startsWith('/agent') ? a.agentToken : a.token;
      const res = await cp.app.request(url, { headers: { authorization: `Bearer ${token}` } });
      assert.ok(res.status < 500, `GET ${url}: ${res.status}`);
      assertNoSecret(await res.text(), secretKey, `GET ${url}`);
    }
  });

  it("never shows a team's key to another team", async () => {
    const other = await cp.request<{ key: unknown }>('GET', '/team', b.token);
    assert.equal(other.status, 200);
    assert.equal(other.body.key, null);
    const own = await cp.request<NewTeamKey>('POST', '/team/key', b.token);
    assert.equal(own.status, 201, 'a key of team A does not stop team B from making its own');
    assert.notEqual(own.body.fingerprint, created.fingerprint);
    for (const path of ['/team', '/team/tokens', '/servers', '/environments']) {
      const text = JSON.stringify((await cp.request('GET', path, b.token)).body);
      for (const ofA of [created.fingerprint, created.publicKey])
        assert.ok(!text.includes(ofA), `GET ${path} as B`);
      assertNoSecret(text, secretKey, `GET ${path} as B`);
    }
  });

  it('keeps the secret key out of the database in every form, as pg_dump and the raw columns show', async () => {
    const { stdout: dump } = await promisify(execFile)('pg_dump', ['--data-only', `--dbname=${cp.dbUrl}`], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const row = await cp.db
      .selectFrom('team_keys')
      .innerJoin('vault_secrets', 'vault_secrets.id', 'team_keys.secret_id')
      .select(['vault_secrets.id', 'vault_secrets.kind', 'wrapped_key', 'ciphertext'])
      .where('team_keys.team_id', '=', a.teamId)
      .executeTakeFirstOrThrow();
    assert.ok(dump.includes(row.id), 'the dump holds the vault row, so searching it means something');
    assert.ok(dump.includes(created.publicKey), 'and the public key, in the hex form bytea dumps as');
    assertNoSecret(dump, secretKey, 'pg_dump');
    // 12-byte IV, the 32-byte value, 16-byte tag.
    assert.equal(row.wrapped_key.length, 60);
    assert.equal(row.ciphertext.length, 60);
    assertNoSecretBytes(row.wrapped_key, secretKey, 'vault_secrets.wrapped_key');
    assertNoSecretBytes(row.ciphertext, secretKey, 'vault_secrets.ciphertext');
  });

  it('opens the secret key with the right master key and refuses with a wrong one, naming no secret', async () => {
    assert.ok((await openTeamSecretKey(cp.db, cp.vault, a.teamId)).equals(secretKey));
    const wrong = new Vault(randomBytes(32));
    await assert.rejects(openTeamSecretKey(cp.db, wrong, a.teamId), (err: Error) => {
      assert.ok(err instanceof VaultError);
      assert.match(err.message, /cannot be opened with this VAULT_MASTER_KEY/);
      assertNoSecret(`${err.message}\n${err.stack}`, secretKey, 'the error');
      return true;
    });
  });

  it('binds each sealed value to its row: another team, kind or copied seal does not open', async () => {
    const secret = randomBytes(40);
    const id = await cp.vault.put(cp.db, { teamId: a.teamId, kind: 'test', secret });
    assert.ok((await cp.vault.open(cp.db, a.teamId, id, 'test')).equals(secret));
    await assert.rejects(cp.vault.open(cp.db, b.teamId, id, 'test'), { code: 'secret_not_found' });
    // Asked for as another kind (a row naming the wrong secret): refused, whatever the id.
    await assert.rejects(cp.vault.open(cp.db, a.teamId, id, 'team-secret-key'), (err: Error) => {
      assert.ok(err instanceof VaultError);
      assert.match(err.message, /is a test, not the team-secret-key asked for/);
      return true;
    });

    await cp.db.updateTable('vault_secrets').set({ kind: 'team-secret-key' }).where('id', '=', id).execute();
    await assert.rejects(cp.vault.open(cp.db, a.teamId, id, 'team-secret-key'), VaultError);

    // The wrapped key and ciphertext of one secret pasted onto another of the same team and kind.
    const other = await cp.vault.put(cp.db, { teamId: a.teamId, kind: 'test', secret: randomBytes(40) });
    const copy = await cp.vault.put(cp.db, { teamId: a.teamId, kind: 'test', secret });
    const sealed = await cp.db
      .selectFrom('vault_secrets')
      .select(['wrapped_key', 'ciphertext'])
      .where('id', '=', copy)
      .executeTakeFirstOrThrow();
    await cp.db.updateTable('vault_secrets').set(sealed).where('id', '=', other).execute();
    await assert.rejects(cp.vault.open(cp.db, a.teamId, other, 'test'), VaultError);
  });

  it('goes away with its team', async () => {
    const team = await createTeam(cp.db, 'leaving');
    const res = await cp.request('POST', '/team/key', team.token);
    assert.equal(res.status, 201);
    await cp.db.deleteFrom('teams').where('id', '=', team.team.id).execute();
    const left = await cp.db
      .selectFrom('vault_secrets')
      .select('id')
      .where('team_id', '=', team.team.id)
      .execute();
    assert.deepEqual(left, []);
  });
});

describe('the vault master key at start-up', () => {
  const programs = ['api/main.ts', 'worker/control-plane.main.ts'];
  // Never reached: the configuration is read before anything is connected.
  const base = { DATABASE_URL: 'postgres://strackt@127.0.0.1:1/strackt', TEMPORAL_ADDRESS: '127.0.0.1:1' };

  it('stops a control-plane program without one, saying how to make one and what losing it means', async () => {
    for (const program of programs) {
      const run = runProgram(program, base);
      assert.equal(await run.exited, 2, run.output());
      assert.match(run.output(), /configuration error: VAULT_MASTER_KEY is required but not set/);
      assert.match(run.output(), /head -c 32 \/dev\/urandom \| base64/);
      assert.match(run.output(), /every team key and credential strackt stores/);
      assert.match(run.output(), /unreadable/);
      assert.match(run.output(), /only with the team keys customers saved/);
    }
  });

  it('stops a control-plane program with a malformed one, without echoing it', async () => {
    for (const [program, value] of [
      ['api/main.ts', randomBytes(16).toString('base64')],
      ['worker/control-plane.main.ts', randomBytes(32).toString('hex')],
      ['api/main.ts', randomBytes(33).toString('base64')],
    ] as const) {
      const run = runProgram(program, { ...base, VAULT_MASTER_KEY: value });
      assert.equal(await run.exited, 2, run.output());
      assert.match(run.output(), /VAULT_MASTER_KEY is invalid: must be the base64 of exactly 32 bytes/);
      assert.match(run.output(), /head -c 32 \/dev\/urandom \| base64/);
      assert.ok(!run.output().includes(value), 'the value stays out of the message');
    }
  });
});
