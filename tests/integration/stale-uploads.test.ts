import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
} from '@aws-sdk/client-s3';
import { createS3Client } from '../../common/s3-client.ts';
import { sweepStaleUploads } from '../../storage/stale-uploads.ts';
import { stack } from '../helpers/stack.ts';

it('aborts stale multipart uploads under our prefix that no snapshot owns, and only those', async () => {
  const s3 = createS3Client({ ...stack.s3, region: 'us-east-1', forcePathStyle: true });
  const bucket = `sweep-${randomBytes(4).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const start = async (key: string) =>
    (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
  const owned = await start('strackt/team_a/env_1/snap_running/data.tar.zst.strackt');
  await start('strackt/team_a/env_1/snap_crashed/data.tar.zst.strackt');
  await start('someone-else/big-upload.bin');

  assert.deepEqual(
    await sweepStaleUploads(s3, bucket, 'strackt/team_a/', new Set([owned]), 3600_000),
    [],
    'young uploads stay',
  );
  const swept = await sweepStaleUploads(s3, bucket, 'strackt/team_a/', new Set([owned]), 0);
  assert.deepEqual(swept, ['strackt/team_a/env_1/snap_crashed/data.tar.zst.strackt']);
  const left = (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket })))
    .Uploads!.map((u) => u.Key)
    .sort();
  assert.deepEqual(left, [
    'someone-else/big-upload.bin',
    'strackt/team_a/env_1/snap_running/data.tar.zst.strackt',
  ]);
});
