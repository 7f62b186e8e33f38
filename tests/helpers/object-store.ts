import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createS3Client } from '../../common/s3-client.ts';
import { freePorts, stack, uniqueName, waitFor } from './stack.ts';

/**
 * A versitygw of a test's own, with fresh root credentials: to stop for real, (`iam`) to run with
 * users an administrator can create and delete, or (`host`) to listen where a network namespace
 * reaches it rather than on loopback.
 */
export async function startObjectStore({ iam = false, host = '127.0.0.1' } = {}) {
  const [port] = (await freePorts(1)) as [number];
  const dir = join(stack.runDir, uniqueName('s3'));
  for (const sub of ['b', 'meta', 'iam']) await mkdir(join(dir, sub), { recursive: true });
  const credentials = {
    accessKeyId: `k${randomBytes(6).toString('hex')}`,
    secretAccessKey: randomBytes(16).toString('hex'),
  };
  const child = spawn(
    process.env.STRACKT_TEST_VERSITYGW_BIN!,
    [
      ...['--port', `${host}:${port}`, '--quiet'],
      ...(iam ? ['--iam-dir', join(dir, 'iam')] : []),
      ...['posix', '--sidecar', join(dir, 'meta'), join(dir, 'b')],
    ],
    {
      stdio: 'ignore',
      env: {
        ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
        ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
    },
  );
  const endpoint = `http://${host}:${port}`;
  const s3 = createS3Client({ ...credentials, endpoint, region: 'us-east-1', forcePathStyle: true });
  await waitFor('the object store', () => s3.send(new ListBucketsCommand({})).then(() => true));
  return { child, endpoint, credentials, s3 };
}
