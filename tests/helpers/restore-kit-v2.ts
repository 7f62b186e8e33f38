import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { documentedScript } from './documented-script.ts';
import { repoRoot, stack } from './stack.ts';

/**
 * A format-2 snapshot restored as a customer would without strackt: docs/RESTORE-WITHOUT-STRACKT.md's
 * block for format 2, run exactly as written in a folder holding only the team key and the restore
 * kit (an S3 client copies the packs and the manifest, the kit's Python assembles and unpacks them).
 * Resolves with the folder holding the volumes.
 */
export async function restoreWithKitV2(p: {
  bucket: string;
  /** The team's folder in the bucket, e.g. strackt/team_... */
  teamPrefix: string;
  secretKey: string;
  environmentId: string;
  snapshotId: string;
  work: string;
}): Promise<string> {
  await mkdir(join(p.work, 'restore-kit'), { recursive: true });
  await writeFile(join(p.work, 'team.key'), `${p.secretKey}\n`, { mode: 0o600 });
  for (const tool of ['strackt-decrypt.py', 'strackt-assemble-v2.py', 'strackt-extract.py'])
    await cp(join(repoRoot, 'restore-kit', tool), join(p.work, 'restore-kit', tool));
  const run = spawnSync('bash', ['-c', documentedScript('restore-script-v2')], {
    cwd: p.work,
    encoding: 'utf8',
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', // Debian's python3 and awscli
      HOME: p.work,
      AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      ENDPOINT: stack.s3.endpoint,
      BUCKET: p.bucket,
      PREFIX: p.teamPrefix.split('/').slice(0, -1).join('/'),
      KIT: './restore-kit',
      SNAPSHOT: `${p.teamPrefix}/${p.environmentId}/${p.snapshotId}`,
    },
  });
  assert.equal(run.status, 0, `the documented format-2 restore failed:\n${run.stdout}${run.stderr}`);
  return join(p.work, 'restored');
}
