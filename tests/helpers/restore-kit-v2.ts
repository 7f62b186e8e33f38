import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stackS3 } from './control-plane.ts';

const run = promisify(execFile);
const kit = (name: string) => fileURLToPath(new URL(`../../restore-kit/${name}`, import.meta.url));

/**
 * A format-2 snapshot restored as a customer would without strackt: the team's folder of the bucket
 * copied with an S3 client, then assembled and unpacked by the restore kit's Python with the team key
 * alone. Resolves with the folder holding the volumes.
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
  const teamDir = join(p.work, 'bucket');
  const s3 = stackS3();
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: p.bucket, Prefix: `${p.teamPrefix}/`, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      const body = await s3.send(new GetObjectCommand({ Bucket: p.bucket, Key: object.Key! }));
      const path = join(teamDir, object.Key!.slice(p.teamPrefix.length + 1));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, await body.Body!.transformToByteArray());
    }
    token = page.NextContinuationToken;
  } while (token);
  const keyFile = join(p.work, 'team.key');
  await writeFile(keyFile, p.secretKey);
  const out = join(p.work, 'assembled');
  await run('/usr/bin/python3', [
    kit('strackt-assemble-v2.py'),
    '--key-file',
    keyFile,
    teamDir,
    `${p.environmentId}/${p.snapshotId}`,
    out,
  ]);
  const restored = join(out, 'restored');
  await run('/usr/bin/python3', [
    kit('strackt-extract.py'),
    '--manifest',
    join(out, 'manifest.json'),
    join(out, 'snapshot.tar'),
    restored,
  ]);
  return restored;
}
