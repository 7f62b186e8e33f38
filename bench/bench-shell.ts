import { execFileSync, spawnSync } from 'node:child_process';
import { stack } from '../tests/helpers/stack.ts';

/** The baselines' environment: the stack's object store for the AWS CLI and restic, restic's password. */
export const s3Env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
  AWS_DEFAULT_REGION: 'us-east-1',
  RESTIC_PASSWORD: 'bench-password',
};

/** Seconds a shell pipeline takes (failing if any part fails). */
export function timed(script: string): number {
  // Each side starts with no dirty pages left by the other, or writeback would bill one for the other's data.
  execFileSync('sync');
  const t = performance.now();
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${script}`], { stdio: 'inherit', env: s3Env });
  if (r.status !== 0) throw new Error(`failed: ${script}`);
  return (performance.now() - t) / 1000;
}
