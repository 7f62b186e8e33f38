import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  stat,
  symlink,
  utimes,
  writeFile,
  chmod,
} from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../common/s3-client.ts';
import { writeArchive } from '../../format/archive-writer.ts';
import { newDataKey } from '../../format/data-key.ts';
import { buildManifest, snapshotObjectKeys } from '../../format/manifest.ts';
import { sealManifest } from '../../format/manifest-object.ts';
import { fingerprintOf, generateTeamKey, keyIdOf, printableSecretKey } from '../../format/team-key.ts';
import { documentedScript } from '../helpers/documented-script.ts';
import { repoRoot, stack } from '../helpers/stack.ts';

async function tree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, path));
    const meta = `mode=${(st.mode & 0o7777).toString(8)} owner=${st.uid}:${st.gid} mtime=${Math.floor(st.mtimeMs)}`;
    if (st.isSymbolicLink()) out[path] = `symlink->${await readlink(join(root, path))}`;
    else if (st.isDirectory()) Object.assign(out, { [path]: `dir ${meta}` }, await tree(root, path));
    else
      out[path] = `file ${meta} sha=${createHash('sha256')
        .update(await readFile(join(root, path)))
        .digest('hex')}`;
  }
  return out;
}

it('restores a snapshot from the bucket with only the documented commands: S3 client, python3-nacl, zstd, tar', async () => {
  // A source environment's volumes, with what a restore must bring back exactly.
  const source = await mkdtemp(join(stack.runDir, 'src-'));
  await mkdir(join(source, 'pgdata', 'base'), { recursive: true });
  await mkdir(join(source, 'uploads', 'empty'), { recursive: true });
  await writeFile(join(source, 'pgdata', 'base', 'rel'), randomBytes(2 * 1024 * 1024));
  await writeFile(join(source, 'pgdata', 'PG_VERSION'), '15\n');
  await chmod(join(source, 'pgdata', 'PG_VERSION'), 0o600);
  await chown(join(source, 'pgdata', 'PG_VERSION'), 101, 104);
  await symlink('base/rel', join(source, 'pgdata', 'current'));
  await link(join(source, 'pgdata', 'base', 'rel'), join(source, 'pgdata', 'rel-again'));
  await writeFile(join(source, 'uploads', 'photo.jpg'), randomBytes(1000));
  await utimes(join(source, 'uploads', 'photo.jpg'), 1_500_000_000, 1_500_000_000);

  // The snapshot, as strackt writes it, in a real bucket.
  const team = generateTeamKey();
  const dataKey = newDataKey();
  const dataFile = join(stack.runDir, `data-${randomBytes(4).toString('hex')}`);
  const { entries, tarBytes } = await writeArchive({
    root: source,
    volumes: ['pgdata', 'uploads'],
    publicKey: team.publicKey,
    dataKey,
    sink: createWriteStream(dataFile),
  });
  const manifest = buildManifest(
    {
      snapshotId: 'snap_restoretest',
      teamId: 'team_restoretest',
      environmentId: 'env_restoretest',
      environmentName: 'shop',
      sourceServerId: 'srv_a',
      createdAt: new Date().toISOString(),
      keyId: keyIdOf(team.publicKey).toString('hex'),
      services: [
        { name: 'db', volumes: ['pgdata'] },
        { name: 'web', volumes: ['uploads'] },
      ],
    },
    { entries, tarBytes },
  );
  const bucket = `restore-${randomBytes(4).toString('hex')}`;
  const s3 = createS3Client({ ...stack.s3, region: 'us-east-1', forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const keys = snapshotObjectKeys('strackt', manifest.teamId, manifest.environmentId, manifest.snapshotId);
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: keys.data,
      Body: createReadStream(dataFile),
      ContentLength: (await stat(dataFile)).size,
    }),
  );
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: keys.manifest,
      Body: await sealManifest(manifest, team.publicKey, dataKey),
    }),
  );

  // The customer's side: a folder with their key and the kit, and nothing else of strackt.
  const customer = await mkdtemp(join(stack.runDir, 'customer-'));
  await writeFile(join(customer, 'team.key'), `${printableSecretKey(team.secretKey)}\n`, { mode: 0o600 });
  await mkdir(join(customer, 'restore-kit'));
  for (const tool of ['strackt-decrypt.py', 'strackt-extract.py'])
    execFileSync('cp', [join(repoRoot, 'restore-kit', tool), join(customer, 'restore-kit/')]);
  const run = spawnSync('bash', ['-c', documentedScript('restore-script')], {
    cwd: customer,
    encoding: 'utf8',
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', // Debian's python3 and awscli
      HOME: customer,
      AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      ENDPOINT: stack.s3.endpoint,
      BUCKET: bucket,
      PREFIX: 'strackt',
      KIT: './restore-kit',
    },
  });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.ok(run.stdout.includes(fingerprintOf(team.publicKey)), 'step 1 prints the fingerprint');
  assert.match(run.stdout, /shop .* \['pgdata', 'uploads'\]/);
  assert.deepEqual(await tree(join(customer, 'restored')), await tree(source));
  const rel = await stat(join(customer, 'restored', 'pgdata', 'rel-again'));
  assert.equal(rel.nlink, 2, 'the hard link is a hard link again');
});
