// Builds the agent into one JavaScript file (.build/agent/agent.mjs) beside the worker threads it
// starts. Agents run on customers' servers from this build, not through tsx: compiling TypeScript at
// start cost the agent ~40 MiB of its memory budget (measured: 188 MiB idle through tsx).
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.build', 'agent');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(root, 'worker', 'agent.main.ts')],
  outfile: join(out, 'agent.mjs'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
// Started by URL relative to the module that starts them, which is now agent.mjs.
for (const thread of ['tar-reader.js', 'hash-worker.js', 'unpack-writer.js'])
  await copyFile(join(root, 'format', thread), join(out, thread));
