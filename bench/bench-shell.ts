import { spawn } from 'node:child_process';
import { stack } from '../tests/helpers/stack.ts';

/** The baselines' environment: the stack's object store for the AWS CLI and restic, restic's password. */
export const s3Env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
  AWS_DEFAULT_REGION: 'us-east-1',
  RESTIC_PASSWORD: 'bench-password',
};

/**
 * Runs a shell pipeline (failing if any part fails), without blocking: a bench's control plane runs
 * in its own process and must keep answering its agent, whose silence for 75 s would make the
 * server disconnected (a 10 GiB copy or pipeline takes longer). Answers what it printed if asked to.
 */
export function shell(script: string, output: 'inherit' | 'capture' = 'inherit'): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -o pipefail; ${script}`], {
      stdio: ['ignore', output === 'capture' ? 'pipe' : 'inherit', 'inherit'],
      env: s3Env,
    });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`failed: ${script}`))));
  });
}

/** Seconds a shell pipeline takes (failing if any part fails). */
export async function timed(script: string): Promise<number> {
  // Each side starts with no dirty pages left by the other, or writeback would bill one for the other's data.
  await shell('sync');
  const t = performance.now();
  await shell(script);
  return (performance.now() - t) / 1000;
}
